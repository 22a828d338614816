"""The one training loop, for teachers and students alike: phases, optimisers, the milestone
schedule, clipping, mixed precision and the other speed options, a progress bar, per-epoch
metrics, checkpoint and resume."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import (Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, field_validator,
                      model_validator)
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset
from tqdm import tqdm

from .data import AugmentedTensors, batches, on_device
from .errors import ConfigError, DivergenceError
from .methods import STUDENT, Loss, Method, Outputs
from .schema import Schema
from .storage import load_checkpoint, save_atomic
from .teachers import Teacher

log = logging.getLogger(__name__)


class Recipe(Schema):
    """How a network is optimised: optimiser, learning-rate schedule, batch size and clipping.

    The rate is ``lr * gamma ** (number of milestones <= epoch)``: the schedule's factor is
    explicit, so it cannot be confused with the rate itself (the authors' prototype did; see
    docs/method.md). ``filter_lr``, when set, is the constant rate of RID's teacher-filter phase.
    """

    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: PositiveFloat = 0.05
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: NonNegativeFloat = 5e-4
    milestones: tuple[NonNegativeInt, ...] = ()
    gamma: PositiveFloat = 0.2
    batch_size: PositiveInt = 128
    clip_grad_norm: PositiveFloat | None = None
    filter_lr: PositiveFloat | None = None

    @field_validator("milestones")
    @classmethod
    def _in_order(cls, milestones: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(milestones))

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> Recipe:
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0; set nesterov: false or a momentum")
        return self

    def learning_rate(self, epoch: int, phase: str = STUDENT) -> float:
        """The learning rate of 0-based epoch ``epoch`` in ``phase``."""
        if phase != STUDENT and self.filter_lr is not None:
            return self.filter_lr
        return self.lr * self.gamma ** sum(epoch >= m for m in self.milestones)

    def optimizer_for(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """A fresh optimiser of this recipe over ``params``."""
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(
            params, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov, weight_decay=self.weight_decay
        )


PRECISIONS = {"auto": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}
"""Training precisions by name; ``auto`` is decided by the device (see :class:`Precision`)."""


@dataclass
class Precision:
    """Mixed precision: ``auto`` is bf16 on CUDA GPUs that support it, fp16 with a gradient scaler
    on other CUDA GPUs, and fp32 elsewhere; ``bf16`` and ``fp16`` force it on any device."""

    device: torch.device
    choice: str = "auto"
    dtype: torch.dtype | None = field(init=False)
    scaler: torch.amp.GradScaler | None = field(init=False)

    def __post_init__(self) -> None:
        self.dtype = PRECISIONS[self.choice]
        if self.choice == "auto" and self.device.type == "cuda":
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type) if self.dtype is torch.float16 else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


class Speed(Schema):
    """How a run is computed, not what it computes, so none of it enters a run's key: the
    ``precision`` (see :class:`Precision`); the channels-last memory layout for image batches
    (None: on CUDA only); ``torch.compile`` of the student and the teacher (compiling takes a
    minute or two, worth it for long runs); loader processes (``workers``) for datasets read
    from files (CUB), which are pinned and persistent; how many seconds of training a crash
    may lose (``checkpoint_seconds``: the checkpoint is written after an epoch once that long
    has passed since the last one, and after the last epoch; 0 writes it after every epoch):
    an embedded epoch takes about 0.1 s, and writing its checkpoint 10-50 ms."""

    precision: Literal[tuple(PRECISIONS)] = "auto"
    channels_last: bool | None = None
    compile: bool = False
    workers: NonNegativeInt = 4
    checkpoint_seconds: NonNegativeFloat = 60.0

    def layout(self, device: torch.device, example: Tensor) -> torch.memory_format:
        """The memory format of batches of ``example`` (one input) on ``device``."""
        wanted = device.type == "cuda" if self.channels_last is None else self.channels_last
        return torch.channels_last if wanted and example.dim() == 3 else torch.contiguous_format


def resolve_device(device: str = "auto", threads: int | None = None) -> torch.device:
    """Pick CUDA, then MPS, then CPU for ``"auto"``; on CPU set torch's thread count explicitly.

    On CPU the thread count is ``threads``, else ``$PIDKD_THREADS``, else 1: the embedded models
    are small, and several processes that each use every core slow each other down many-fold.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cpu":
        torch.set_num_threads(threads or int(os.environ.get("PIDKD_THREADS", "1")))
    return resolved


def progress_bar(iterable: Iterable, enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar over ``iterable``, silent when not ``enabled``. ``disable`` is only passed to
    silence it, so ``TQDM_DISABLE=1`` (used when notebooks are executed and checked) still applies."""
    return tqdm(iterable, **options) if enabled else tqdm(iterable, disable=True, **options)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness (shuffling, dropout, noise), so a resumed run matches."""
    return seed * 100_003 + epoch


def _with_teacher_outputs(dataset: TensorDataset, teacher: nn.Module, batch_size: int) -> TensorDataset:
    """Append the teacher's (clean) outputs to an unaugmented tensor dataset, computed once on
    the dataset's device."""
    x, y = dataset.tensors
    with torch.no_grad():
        chunks = [teacher(xb) for xb in x.split(batch_size)]
    logits = torch.cat([c.logits for c in chunks])
    features = [torch.cat([c.features[i] for c in chunks]) for i in range(len(chunks[0].features))]
    return TensorDataset(x, y, logits, *features)


def _outputs(
    model: nn.Module, dataset: Dataset, device: torch.device, workers: int = 0
) -> Iterator[tuple[Tensor, list[Tensor], Tensor]]:
    """(logits, features, labels) of ``model`` in eval and inference mode, batch by batch."""
    model.eval()
    with torch.inference_mode():
        for x, y in batches(dataset, 512, shuffle=False, num_workers=workers, pin_memory=True):
            logits, features = model(x.to(device, non_blocking=True))
            yield logits, features, y


def evaluate(model: nn.Module, dataset: Dataset, device: torch.device, workers: int = 0) -> float:
    """Test accuracy of ``model`` on ``dataset`` (``workers`` loader processes for file-backed data)."""
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for logits, _, y in _outputs(model, dataset, device, workers):
        correct += (logits.argmax(1) == y.to(device)).sum()
    return correct.item() / len(dataset)


def representations(
    model: nn.Module, dataset: Dataset, device: torch.device, workers: int = 0, layers: Collection[int] = ()
) -> list[Tensor | None]:
    """The distilled features of ``model`` for every example of ``dataset``, one tensor a layer, on
    the CPU; with ``layers`` (indices, -1 the last) only those are collected, None in place of the others."""
    kept: list[list[Tensor] | None] = []
    for _, features, _ in _outputs(model, dataset, device, workers):
        if not kept:
            wanted = {layer % len(features) for layer in layers} or set(range(len(features)))
            kept = [[] if i in wanted else None for i in range(len(features))]
        for chunks, f in zip(kept, features):
            if chunks is not None:
                chunks.append(f.float().cpu())
    return [None if chunks is None else torch.cat(chunks) for chunks in kept]


@dataclass
class _Phases:
    """One optimiser per phase: RID's teacher-filter phase and the student phase are separate."""

    student: nn.Module
    method: Method
    recipe: Recipe
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)

    def parameters(self, phase: str) -> list[nn.Parameter]:
        own = list(self.student.parameters()) if phase == STUDENT else []
        return own + self.method.phase_parameters(phase)

    def optimizer(self, phase: str) -> torch.optim.Optimizer:
        if phase not in self.optimizers:
            self.optimizers[phase] = self.recipe.optimizer_for(self.parameters(phase))
        return self.optimizers[phase]


def fit(
    student: nn.Module,
    method: Method,
    train_set: Dataset,
    test_set: Dataset,
    *,
    recipe: Recipe,
    epochs: int,
    seed: int,
    teacher: Teacher | None = None,
    device: str | torch.device = "auto",
    checkpoint: Path | None = None,
    progress: bool = True,
    after_epoch: Callable[[int, nn.Module], None] | None = None,
    speed: Speed = Speed(),
    validation_set: Dataset | None = None,
    evaluate_every: int = 1,
) -> list[dict]:
    """Train ``student`` with ``method`` for ``epochs`` and return one metrics row per epoch.

    Each row has the accuracy on ``test_set`` (``test_acc``) and, with a ``validation_set``, on
    it (``val_acc``): settings are chosen on the validation split, never on the test split.
    They are measured after every ``evaluate_every``-th epoch and after the last (NaN on other
    rows): on small training sets evaluation can cost as much as training.

    ``after_epoch(epoch, student)`` runs after each epoch (1-based) and before its checkpoint,
    e.g. to save representations for PID measures.

    With ``checkpoint``, state is written there atomically after the last epoch and after
    others as often as ``speed.checkpoint_seconds`` says, and training resumes from it; each
    epoch reseeds from ``(seed, epoch)``, so a resumed run ends with the same numbers as an
    uninterrupted one (for file-backed datasets read by loader processes, only up to their
    augmentation draws).

    On CUDA a tensor dataset moves to the GPU once and is augmented there (an
    :class:`AugmentedTensors`); an unaugmented one gets the teacher's outputs computed once (unless
    the teacher normalises each batch by its own statistics).
    """
    if method.needs_teacher and teacher is None:
        raise ConfigError(f"method {type(method).__name__} needs a teacher; pass teacher=...")
    if evaluate_every < 1:
        raise ConfigError(f"evaluate_every must be a positive number of epochs, not {evaluate_every}")
    device = device if isinstance(device, torch.device) else resolve_device(device)
    layout = speed.layout(device, test_set[0][0])
    student.to(device, memory_format=layout)
    method.to(device)
    phases = _Phases(student, method, recipe)
    precision = Precision(device, speed.precision)
    metrics: list[dict] = []
    start = 0
    if checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        student.load_state_dict(state["student"])
        method.load_state_dict(state["method"])
        for phase, optimizer_state in state["optimizers"].items():
            phases.optimizer(phase).load_state_dict(optimizer_state)
        if precision.scaler and state.get("scaler"):
            precision.scaler.load_state_dict(state["scaler"])
        metrics, start = state["metrics"], len(state["metrics"])
        log.info("resuming %s at epoch %d", checkpoint, start)

    use_teacher = method.needs_teacher
    if use_teacher:
        teacher.to(device, memory_format=layout)
    forward = torch.compile(student) if speed.compile else student
    teacher_forward = torch.compile(teacher) if speed.compile and use_teacher else teacher
    augment = train_set.augment if isinstance(train_set, AugmentedTensors) else None
    if isinstance(train_set, TensorDataset) and device.type == "cuda":
        train_set = on_device(train_set, device)
    if use_teacher and isinstance(train_set, TensorDataset) and augment is None and not teacher.batch_statistics:
        train_set = _with_teacher_outputs(train_set, teacher_forward, 512)
    loader = batches(train_set, recipe.batch_size, shuffle=True, seed=seed, num_workers=speed.workers, pin_memory=True)

    saved_at = time.perf_counter()
    for epoch in range(start, epochs):
        began = time.perf_counter()
        method.train()
        phase = method.begin_epoch(epoch, epochs)
        torch.manual_seed(epoch_seed(seed, epoch))
        loader.generator.manual_seed(epoch_seed(seed, epoch))
        draws = torch.Generator(device).manual_seed(epoch_seed(seed, epoch))  # augmentation and noise
        optimizer = phases.optimizer(phase)
        lr = recipe.learning_rate(epoch, phase)
        for group in optimizer.param_groups:
            group["lr"] = lr
        student.train(method.student_trains(phase))
        sums = _EpochSums(device)
        bar = progress_bar(loader, progress, desc=f"epoch {epoch + 1}/{epochs} {phase}", leave=False)
        for x, y, *cached in bar:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if augment is not None:
                x = augment(x, draws)
            x = x.contiguous(memory_format=layout)
            with precision.autocast():
                teacher_out = None
                if use_teacher:
                    teacher_out = _teacher_outputs(teacher, teacher_forward, x, cached, device, draws)
                with contextlib.nullcontext() if phase == STUDENT else torch.no_grad():
                    logits, features = forward(x)
                loss = method.loss(phase, Outputs(logits, features), teacher_out, y)
            _step(loss.total, optimizer, phases.parameters(phase), recipe, precision)
            sums.add(loss, len(y))
        row = {"epoch": epoch + 1, "phase": phase, "lr": lr, **sums.means(epoch + 1)}
        evaluated = (epoch + 1) % evaluate_every == 0 or epoch + 1 == epochs
        if validation_set is not None:
            row["val_acc"] = evaluate(student, validation_set, device, speed.workers) if evaluated else math.nan
        row["test_acc"] = evaluate(student, test_set, device, speed.workers) if evaluated else math.nan
        metrics.append({**row, "seconds": time.perf_counter() - began})
        if after_epoch is not None:
            after_epoch(epoch + 1, student)
        if checkpoint is not None and (
            epoch + 1 == epochs or time.perf_counter() - saved_at >= speed.checkpoint_seconds
        ):
            saved_at = time.perf_counter()
            save_atomic(
                {
                    "student": student.state_dict(),
                    "method": method.state_dict(),
                    "optimizers": {p: o.state_dict() for p, o in phases.optimizers.items()},
                    "metrics": metrics,
                    "scaler": precision.scaler.state_dict() if precision.scaler else {},
                },
                checkpoint,
            )
    return metrics


class _EpochSums:
    """Example-weighted sums of a phase's loss and its terms, kept on the device in float64 so the
    loop never waits for the GPU inside an epoch; read once, at its end."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[str, Tensor] = {}
        self.count = 0

    def add(self, loss: Loss, examples: int) -> None:
        for name, value in {"train_loss": loss.total.detach(), **loss.terms}.items():
            weighted = value.double() * examples
            self.sums[name] = self.sums[name] + weighted if name in self.sums else weighted
        self.count += examples

    def means(self, epoch: int) -> dict[str, float]:
        """``train_loss`` and ``<term>_loss`` for each term; a non-finite loss stops training."""
        means = {name: (total / self.count).item() for name, total in self.sums.items()}
        if not all(map(math.isfinite, means.values())):
            raise DivergenceError(
                f"the loss became {means['train_loss']} in epoch {epoch}; lower the learning rate or the "
                f"method's weight, or clip gradients (recipe clip_grad_norm)"
            )
        return {name if name == "train_loss" else f"{name}_loss": value for name, value in means.items()}


def _teacher_outputs(
    teacher: Teacher, forward: nn.Module, x: Tensor, cached: list[Tensor], device: torch.device, noise: torch.Generator
) -> Outputs:
    """The teacher's outputs for a batch (``forward`` is the teacher, perhaps compiled), from the
    cache when there is one, then corrupted."""
    if cached:
        clean = Outputs(cached[0].to(device), [f.to(device) for f in cached[1:]])
    else:
        with torch.inference_mode():
            clean = forward(x)
        # Inference tensors cannot be saved for backward; plain copies can be used as targets.
        clean = Outputs(clean.logits.clone(), [f.clone() for f in clean.features])
    return teacher.corrupt(clean, noise)


def _step(
    loss: Tensor, optimizer: torch.optim.Optimizer, params: list[nn.Parameter], recipe: Recipe, precision: Precision
) -> None:
    """One optimiser step with optional gradient scaling and gradient-norm clipping."""
    optimizer.zero_grad(set_to_none=True)
    scaler = precision.scaler
    (scaler.scale(loss) if scaler else loss).backward()
    if recipe.clip_grad_norm is not None:
        if scaler:
            scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(params, recipe.clip_grad_norm)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
