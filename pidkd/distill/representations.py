"""Representations of any model for PID measures: the outputs of named layers, or the distilled
features of pidkd's own models, for every example of a dataset."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..errors import ConfigError
from .batching import batches

__all__ = ["model_outputs", "representations"]

BATCH_SIZE = 512


def model_outputs(
    model: nn.Module, dataset: Dataset, device: torch.device, workers: int = 0
) -> Iterator[tuple[Any, Tensor]]:
    """(what ``model`` returns, labels) for each batch of ``dataset`` in order, in eval and inference mode.
    Floating-point inputs are given in the dtype of the model's parameters, so a network trained in
    float64 (precision ``fp64``) reads a float32 dataset."""
    model.eval()
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    with torch.inference_mode():
        for x, y in batches(dataset, BATCH_SIZE, shuffle=False, num_workers=workers, pin_memory=True):
            x = x.to(device, dtype if x.is_floating_point() else None, non_blocking=True)
            yield model(x), y


def representations(
    model: nn.Module, dataset: Dataset, device: torch.device, workers: int = 0,
    layers: Collection[str] | Collection[int] = (),
) -> list[Tensor | None]:
    """Per-example representations of ``model`` on every example of ``dataset``, float32 on the CPU, in
    dataset order, computed batch by batch in eval and inference mode.

    ``layers`` as names from ``model.named_modules()`` (e.g. ``["layer4", "avgpool"]`` of a torchvision
    ResNet) reads those modules' outputs with forward hooks, one tensor a name: hooks work on any module
    whatever its forward returns, where torchvision's ``create_feature_extractor`` must trace the model
    symbolically and fails on data-dependent control flow. ``layers``
    as indices (-1 the last; empty for all) reads the distilled features of a model that returns
    ``(logits, list_of_features)`` like pidkd's, None in place of the ones not asked for.
    """
    if len(dataset) == 0:
        raise ConfigError("the dataset is empty: representations need at least one example")
    names = _layer_names(layers)
    if names:
        return _named_outputs(model, dataset, device, workers, names)
    return _distilled(model, dataset, device, workers, tuple(layers))


def _layer_names(layers: Collection[str] | Collection[int]) -> list[str]:
    """The names in ``layers``, or [] for indices; a ConfigError for a bare string or a mixture."""
    if isinstance(layers, str):
        raise ConfigError(f"layers must be a list of names, e.g. [{layers!r}]; got the string {layers!r}")
    kinds = {str if isinstance(layer, str) else int for layer in layers}
    if len(kinds) > 1:
        raise ConfigError(f"layers mixes names and indices ({list(layers)}): pass names only, or indices only")
    return list(layers) if kinds == {str} else []


def _named_outputs(
    model: nn.Module, dataset: Dataset, device: torch.device, workers: int, names: list[str]
) -> list[Tensor]:
    """The outputs of the modules called ``names``, one tensor a name, read by forward hooks."""
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            suggestions = ", ".join(_suggestions(name, modules))
            raise ConfigError(f"model has no layer {name!r}; valid names include {suggestions} (see model.named_modules())")
    calls: dict[str, list[Any]] = {name: [] for name in names}
    chunks: dict[str, list[Tensor]] = {name: [] for name in names}
    hooks = [modules[name].register_forward_hook(_recorder(calls[name])) for name in calls]
    try:
        for _ in model_outputs(model, dataset, device, workers):
            for name, outputs in calls.items():
                chunks[name].append(_one_tensor(name, outputs))
                outputs.clear()
    finally:
        for hook in hooks:
            hook.remove()
    features = {name: torch.cat(parts) for name, parts in chunks.items()}
    for name, f in features.items():
        if len(f) != len(dataset):
            raise ConfigError(f"layer {name!r} gives {len(f)} rows for {len(dataset)} examples: name a layer whose "
                              f"output has one row per example")
    return [features[name] for name in names]


def _suggestions(name: str, modules: dict[str, nn.Module]) -> list[str]:
    """Names close to ``name``, else the model's top-level layers, for an error message."""
    close = difflib.get_close_matches(name, [n for n in modules if n], n=5)
    return close or [n for n in modules if n and "." not in n][:12]


def _recorder(outputs: list[Any]) -> Callable[[nn.Module, Any, Any], None]:
    """A forward hook that appends each output of its module to ``outputs``, a tensor as a float32 copy on
    the CPU: a later in-place operation (a torchvision ResNet's ReLU after bn1) would change it otherwise."""
    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        outputs.append(output.to("cpu", torch.float32, copy=True) if isinstance(output, Tensor) else output)
    return record


def _one_tensor(name: str, outputs: list[Any]) -> Tensor:
    """The one tensor layer ``name`` gave in a forward pass; a ConfigError otherwise."""
    if len(outputs) != 1:
        raise ConfigError(f"layer {name!r} was called {len(outputs)} times in one forward pass: name a layer that "
                          f"is called exactly once (e.g. a block rather than an activation it reuses)")
    if not isinstance(outputs[0], Tensor):
        raise ConfigError(f"layer {name!r} returns a {type(outputs[0]).__name__}, not a tensor: name a layer "
                          f"(or a sub-layer) whose output is a tensor")
    return outputs[0]


def _distilled(
    model: nn.Module, dataset: Dataset, device: torch.device, workers: int, indices: tuple[int, ...]
) -> list[Tensor | None]:
    """The distilled features at ``indices`` (all if empty) of a model returning (logits, features)."""
    kept: list[list[Tensor] | None] = []
    for output, _ in model_outputs(model, dataset, device, workers):
        features = _feature_list(output)
        if not kept:
            wanted = _wanted(indices, len(features))
            kept = [[] if i in wanted else None for i in range(len(features))]
        for chunks, f in zip(kept, features):
            if chunks is not None:
                chunks.append(f.float().cpu())
    return [None if chunks is None else torch.cat(chunks) for chunks in kept]


def _feature_list(output: Any) -> list[Tensor] | tuple[Tensor, ...]:
    """The features of a (logits, list_of_features) output; a ConfigError for any other output."""
    if (isinstance(output, (tuple, list)) and len(output) == 2 and isinstance(output[1], (tuple, list))
            and output[1] and all(isinstance(f, Tensor) for f in output[1])):
        return output[1]
    raise ConfigError(f"layer indices need a model returning (logits, list of feature tensors), and this one returns "
                      f"{_describe(output)}: name the layers to read instead, e.g. layers=['layer4']")


def _describe(output: Any) -> str:
    """A short description of a model's output for an error message."""
    if isinstance(output, (tuple, list)):
        return f"a {type(output).__name__} of {', '.join(type(o).__name__ for o in output)}"
    return f"a {type(output).__name__}"


def _wanted(indices: tuple[int, ...], count: int) -> set[int]:
    """The positions of ``indices`` (all if empty) among ``count`` features; a ConfigError if out of range."""
    for index in indices:
        if not -count <= index < count:
            raise ConfigError(f"layer index {index} is out of range for a model with {count} distilled layers "
                              f"(use 0 to {count - 1}, or -1 for the last)")
    return {index % count for index in indices} or set(range(count))
