"""How a run is trained and where: the :class:`Recipe` (what it computes), and the device, thread
and :class:`Speed` settings with mixed :class:`Precision` (how it is computed)."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from torch import Tensor, nn

from ..errors import ConfigError
from .methods import STUDENT
from .schema import Schema


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


PRECISIONS = {"auto": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None, "fp64": None}
"""Training precisions by name, with the dtype each autocasts to (None: none); ``auto`` is decided by
the device (see :class:`Precision`)."""


def float_dtype(precision: str) -> torch.dtype:
    """The dtype that the networks and inputs of a run trained in ``precision`` are held in:
    float64 for ``fp64``, float32 for the others (mixed precision autocasts from float32)."""
    return torch.float64 if precision == "fp64" else torch.float32


@contextlib.contextmanager
def built_in(precision: str) -> Iterator[None]:
    """Networks and methods made inside start in :func:`float_dtype` of ``precision`` (torch's default
    dtype, restored after): an fp64 run draws its initial weights in float64, where float32 draws cast
    up would keep the last bits of the CPU's float32 kernels (vectorised ones round differently)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(float_dtype(precision))
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@dataclass
class Precision:
    """Mixed precision: ``auto`` is bf16 on CUDA GPUs that support it, fp16 with a gradient scaler
    on other CUDA GPUs, and fp32 elsewhere; ``bf16`` and ``fp16`` force it on any device. ``fp64``
    is no autocast but float64 throughout (the student, the method, the teacher and every batch
    cast to it): slow, for checks whose numbers must not depend on a CPU's float32 kernels, which
    also needs the networks made in float64 (:func:`built_in`)."""

    device: torch.device
    choice: str = "auto"
    dtype: torch.dtype | None = field(init=False)
    scaler: torch.amp.GradScaler | None = field(init=False)
    float_dtype: torch.dtype = field(init=False)
    """What the networks and inputs are cast to (:func:`float_dtype`)."""

    def __post_init__(self) -> None:
        if self.choice == "fp64" and self.device.type == "mps":
            raise ConfigError("precision fp64: MPS has no float64; train on cpu or cuda, or choose another precision")
        self.dtype = PRECISIONS[self.choice]
        if self.choice == "auto" and self.device.type == "cuda":
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type) if self.dtype is torch.float16 else None
        self.float_dtype = float_dtype(self.choice)

    @property
    def name(self) -> str:
        """fp32, bf16, fp16 or fp64: what a run trains in, part of its identity (``Config.precision``)."""
        if self.float_dtype is torch.float64:
            return "fp64"
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


class Speed(Schema):
    """How a run is computed, not what it computes, so none of it enters a run's key but the
    precision it resolves to (see :class:`Precision`), which changes the numbers; the channels-last memory layout for image batches
    (None: on CUDA only); ``torch.compile`` of the student and the teacher (compiling takes a
    minute or two, worth it for long runs); loader processes (``workers``) for datasets read
    from files (CUB), which are pinned and persistent; how often the checkpoint is written
    (``checkpoint_seconds``: after an epoch once that long has passed since the last write, and
    after the last epoch; 0 writes it after every epoch). Between writes the last finished epoch
    is held in memory and written if training stops on an error or Ctrl-C, so only a killed
    process loses more than one epoch."""

    precision: Literal[tuple(PRECISIONS)] = "auto"
    channels_last: bool | None = None
    compile: bool = False
    workers: NonNegativeInt = 4
    checkpoint_seconds: NonNegativeFloat = 60.0

    def layout(self, device: torch.device, example: Tensor) -> torch.memory_format:
        """The memory format of batches of ``example`` (one input) on ``device``."""
        wanted = device.type == "cuda" if self.channels_last is None else self.channels_last
        return torch.channels_last if wanted and example.dim() == 3 else torch.contiguous_format


DEVICES = "auto, cpu, cuda, cuda:<index>, mps"


def resolve_device(device: str = "auto", threads: int | None = None) -> torch.device:
    """Pick CUDA, then MPS, then CPU for ``"auto"``; refuse, in one line, a device that is unknown
    or absent here, before anything starts. On CPU set torch's thread count explicitly: ``threads``,
    else ``$PIDKD_THREADS``, else 1 (the embedded models are small, and several processes that each
    use every core slow each other down many-fold)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {device!r}; valid devices: {DEVICES}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: this torch ({torch.__version__}) sees no CUDA GPU; use --device cpu "
                          f"(or auto), or install a CUDA build of torch on a machine with one (README, 'Colab and CUDA')")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: there are only {torch.cuda.device_count()} CUDA GPUs here "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available here; use --device cpu (or auto)")
    if resolved.type == "cpu":
        torch.set_num_threads(threads or cpu_threads())
    return resolved


def cpu_threads() -> int:
    """``$PIDKD_THREADS``, else 1: the threads each training process uses on the CPU."""
    text = os.environ.get("PIDKD_THREADS", "1")
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"PIDKD_THREADS must be a whole number of threads of at least 1, not {text!r}; "
                          f"unset it for one thread a process")
    return int(text)
