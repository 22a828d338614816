"""The one training loop, for teachers and students alike: phases, optimisers, the milestone
schedule, clipping, mixed precision and the other speed options, a progress bar, per-epoch
metrics, checkpoint and resume."""
from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset
from tqdm import tqdm

from ..errors import ConfigError, RunInterrupted
from .batching import AugmentedTensors, batches, on_device
from .files import load_checkpoint, save_atomic
from .methods import STUDENT, Loss, Method, Outputs
from .representations import model_outputs
from .settings import Precision, Recipe, Speed, resolve_device
from .teachers import Teacher

log = logging.getLogger(__name__)


def progress_bar(iterable: Iterable, enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar over ``iterable``, silent when not ``enabled``. ``disable`` is only passed to
    silence it, so ``TQDM_DISABLE=1`` (used when notebooks are executed and checked) still applies."""
    return tqdm(iterable, **options) if enabled else tqdm(iterable, disable=True, **options)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness (shuffling, dropout, noise), so a resumed run matches."""
    return seed * 100_003 + epoch


def _with_teacher_outputs(
    dataset: TensorDataset, teacher: nn.Module, batch_size: int, dtype: torch.dtype
) -> TensorDataset:
    """Append the teacher's (clean) outputs to an unaugmented tensor dataset, computed once on
    the dataset's device from its inputs in ``dtype``."""
    x, y = dataset.tensors
    with torch.no_grad():
        chunks = [teacher(xb.to(dtype)) for xb in x.split(batch_size)]
    logits = torch.cat([c.logits for c in chunks])
    features = [torch.cat([c.features[i] for c in chunks]) for i in range(len(chunks[0].features))]
    return TensorDataset(x, y, logits, *features)


def _outputs(
    model: nn.Module, dataset: Dataset, device: torch.device, workers: int = 0
) -> Iterator[tuple[Tensor, list[Tensor], Tensor]]:
    """(logits, features, labels) of ``model`` in eval and inference mode, batch by batch."""
    for (logits, features), y in model_outputs(model, dataset, device, workers):
        yield logits, features, y


def evaluate(model: nn.Module, dataset: Dataset, device: torch.device, workers: int = 0) -> float:
    """Test accuracy of ``model`` on ``dataset`` (``workers`` loader processes for file-backed data)."""
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for logits, _, y in _outputs(model, dataset, device, workers):
        correct += (logits.argmax(1) == y.to(device)).sum()
    return correct.item() / len(dataset)


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
    after_epoch: Callable[[int, nn.Module], str | None] | None = None,
    speed: Speed = Speed(),
    validation_set: Dataset | None = None,
    evaluate_every: int = 1,
) -> list[dict]:
    """Train ``student`` with ``method`` for ``epochs`` and return one metrics row per epoch.

    Each row has the accuracy on ``test_set`` (``test_acc``) and, with a ``validation_set``, on
    it (``val_acc``): settings are chosen on the validation split, never on the test split.
    They are measured after every ``evaluate_every``-th epoch and after the last (NaN on other
    rows): on small training sets evaluation can cost as much as training.

    A run whose epoch ends with a non-finite loss term stops there: its last row names the term
    in ``diverged``, and that is its result. ``after_epoch(epoch, student)`` runs after each
    epoch (1-based) and before its checkpoint, e.g. to save representations for PID measures; it
    returns what became non-finite (the run stops the same way), or None.

    With ``checkpoint``, state is written there atomically after the last epoch and after
    others as often as ``speed.checkpoint_seconds`` says; in between, the last finished epoch is
    kept in memory and written when training stops on an error or Ctrl-C (which ends in
    :class:`~pidkd.errors.RunInterrupted`), so rerunning resumes and loses at most that epoch.
    Each epoch reseeds from ``(seed, epoch)``, so a resumed run ends with the same numbers as an
    uninterrupted one (for file-backed datasets read by loader processes, only up to their
    augmentation draws).

    On CUDA a tensor dataset moves to the GPU once and is augmented there (an
    :class:`AugmentedTensors`); an unaugmented one gets the teacher's outputs computed once (unless
    the teacher normalises each batch by its own statistics). ``speed.precision`` ``fp64`` casts the
    student, the method, the teacher and every batch to float64 (see :class:`Precision`).
    """
    if method.needs_teacher and teacher is None:
        raise ConfigError(f"method {type(method).__name__} needs a teacher; pass teacher=...")
    if evaluate_every < 1:
        raise ConfigError(f"evaluate_every must be a positive number of epochs, not {evaluate_every}")
    device = device if isinstance(device, torch.device) else resolve_device(device)
    layout = speed.layout(device, test_set[0][0])
    precision = Precision(device, speed.precision)
    student.to(device, precision.float_dtype, memory_format=layout)
    method.to(device, precision.float_dtype)
    phases = _Phases(student, method, recipe)
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
        if metrics and metrics[-1].get("diverged"):
            return metrics  # it stopped there
        log.info("resuming %s at epoch %d", checkpoint, start)

    use_teacher = method.needs_teacher
    if use_teacher:
        teacher.to(device, precision.float_dtype, memory_format=layout)
    forward = torch.compile(student) if speed.compile else student
    teacher_forward = torch.compile(teacher) if speed.compile and use_teacher else teacher
    augment = train_set.augment if isinstance(train_set, AugmentedTensors) else None
    if isinstance(train_set, TensorDataset) and device.type == "cuda":
        train_set = on_device(train_set, device)
    if use_teacher and isinstance(train_set, TensorDataset) and augment is None and not teacher.batch_statistics:
        train_set = _with_teacher_outputs(train_set, teacher_forward, 512, precision.float_dtype)
    loader = batches(train_set, recipe.batch_size, shuffle=True, seed=seed, num_workers=speed.workers, pin_memory=True)

    snapshot: dict | None = None  # the state after the last finished epoch, until it is on disk
    saved_at = time.perf_counter()
    try:
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
                x, y = x.to(device, precision.float_dtype, non_blocking=True), y.to(device, non_blocking=True)
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
            means = sums.means()
            diverged = _non_finite(means)
            row = {"epoch": epoch + 1, "phase": phase, "lr": lr, **means}
            evaluated = (epoch + 1) % evaluate_every == 0 or epoch + 1 == epochs or diverged is not None
            if validation_set is not None:
                row["val_acc"] = evaluate(student, validation_set, device, speed.workers) if evaluated else math.nan
            row["test_acc"] = evaluate(student, test_set, device, speed.workers) if evaluated else math.nan
            if after_epoch is not None and diverged is None:
                diverged = after_epoch(epoch + 1, student)
            metrics.append({**row, "seconds": time.perf_counter() - began, **({"diverged": diverged} if diverged else {})})
            if checkpoint is not None:
                snapshot = _copied({
                    "student": student.state_dict(),
                    "method": method.state_dict(),
                    "optimizers": {p: o.state_dict() for p, o in phases.optimizers.items()},
                    "metrics": metrics,
                    "scaler": precision.scaler.state_dict() if precision.scaler else {},
                })
                last = epoch + 1 == epochs or diverged is not None
                if last or time.perf_counter() - saved_at >= speed.checkpoint_seconds:
                    save_atomic(snapshot, checkpoint)
                    snapshot, saved_at = None, time.perf_counter()
            if diverged is not None:
                break
    except BaseException as error:
        if snapshot is not None:  # a crash or Ctrl-C loses at most the epoch it interrupted
            save_atomic(snapshot, checkpoint)
        if isinstance(error, KeyboardInterrupt):
            raise RunInterrupted(f"interrupted at epoch {len(metrics) + 1} of {epochs}; rerun the same command "
                                 f"to resume") from None
        raise
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

    def means(self) -> dict[str, float]:
        """``train_loss`` and ``<term>_loss`` for each term."""
        means = {name: (total / self.count).item() for name, total in self.sums.items()}
        return {name if name == "train_loss" else f"{name}_loss": value for name, value in means.items()}


def _copied(state: Any) -> Any:
    """``state`` (a checkpoint's dicts, lists and tensors) with every tensor cloned: what the loop holds
    after each epoch, so it is cheaper than ``copy.deepcopy`` (benchmarks/snapshot_cost.py times it)."""
    if isinstance(state, Tensor):
        return state.clone()
    if isinstance(state, dict):
        return {key: _copied(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_copied(value) for value in state)
    return state


def _non_finite(means: dict[str, float]) -> str | None:
    """The loss term that stopped being finite (a term before the total it is part of), or None."""
    bad = [name for name, value in means.items() if not math.isfinite(value)]
    return next((name for name in bad if name != "train_loss"), bad[0] if bad else None)


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
