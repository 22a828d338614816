"""What every distillation method shares: the networks' outputs, a batch's loss by named terms,
the :class:`Method` base class with its phases, the baseline, and the parts that VID and RID build
on (1x1 projections, learnable variances, the scaled squared error)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ..schema import Schema

STUDENT = "student"
"""The phase in which the student (and the method's student-side parts) is trained."""
FILTER = "filter"
"""RID's teacher-filter phase: only the teacher-side filters and heads are trained."""

Init = Literal["kaiming", "pytorch"]
"""How a method's own layers start: ``kaiming``, the authors' (Kaiming-uniform, fan-out, ReLU gain,
zero bias: :func:`pidkd.distill.networks.kaiming_init`), or ``pytorch``, PyTorch's defaults (pidkd's own)."""
VarianceStart = Literal["a=5", "v=5"]
"""Where a learnable variance v = softplus(a) + eps starts: ``a=5`` (the authors': v = softplus(5) +
eps, about 5.0077) or ``v=5`` (exactly 5: RepDistiller's, and pidkd's own for RID)."""


@dataclass
class Outputs:
    """What a network returns for a batch: class logits and the distilled features."""

    logits: Tensor
    features: list[Tensor]


@dataclass
class Loss:
    """A batch's loss: ``total`` is what is optimised; ``terms`` are its weighted parts by name
    (detached, they add up to the total), which the loop averages per epoch into metrics.csv."""

    total: Tensor
    terms: dict[str, Tensor]


class Method(nn.Module):
    """Base class of the methods; a subclass declares its parameters in ``Params``."""

    needs_teacher: ClassVar[bool] = True

    class Params(Schema):
        """No parameters."""

    def __init__(
        self, params: Params, *, student_channels: tuple[int, ...], teacher_channels: tuple[int, ...], num_classes: int,
        feature_positions: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.params = params
        self.student_channels = tuple(student_channels)
        self.teacher_channels = tuple(teacher_channels)
        self.num_classes = num_classes
        self.feature_positions = feature_positions
        """The positions (H * W, or L) of each distilled feature map, if known
        (:func:`pidkd.distill.models.feature_positions`); RID's flat head needs them."""

    @classmethod
    def check(cls, params: Params, epochs: int) -> None:
        """Raise a ConfigError if ``params`` cannot train a student for ``epochs`` (validated with a profile)."""

    def phase(self, epoch: int, epochs: int) -> str:
        """The phase epoch ``epoch`` (0-based) of ``epochs`` belongs to."""
        return STUDENT

    def begin_epoch(self, epoch: int, epochs: int) -> str:
        """Prepare for epoch ``epoch`` of ``epochs`` and return its phase; the loop calls it at the
        start of every epoch, after ``train()``."""
        return self.phase(epoch, epochs)

    def student_trains(self, phase: str) -> bool:
        """Whether the student runs in training mode (batch statistics, dropout) in ``phase``."""
        return phase == STUDENT

    def phase_parameters(self, phase: str) -> list[nn.Parameter]:
        """The method's own parameters trained in ``phase`` (the loop adds the student's)."""
        return list(self.parameters()) if phase == STUDENT else []

    def loss(self, phase: str, student: Outputs, teacher: Outputs | None, y: Tensor) -> Loss:
        """The loss of one batch in ``phase``."""
        raise NotImplementedError


class Baseline(Method):
    """The student trained alone: cross-entropy only."""

    needs_teacher = False

    def loss(self, phase: str, student: Outputs, teacher: Outputs | None, y: Tensor) -> Loss:
        ce = F.cross_entropy(student.logits, y)
        return Loss(ce, {"ce": ce.detach()})


def check_layers(student_channels: tuple[int, ...], teacher_channels: tuple[int, ...]) -> None:
    """Feature methods pair student and teacher layers one to one."""
    if len(student_channels) != len(teacher_channels) or not student_channels:
        raise ConfigError(
            f"student and teacher must distil the same, non-zero number of layers; got student "
            f"channels {tuple(student_channels)} and teacher channels {tuple(teacher_channels)}"
        )


class Pointwise(nn.Sequential):
    """A stack of bias-free 1x1 convolutions through ``widths``, each but the last followed by
    BatchNorm (if ``batch_norm``) and ReLU, on features (N, C, *positions) of any shape.

    Computed as matrix products (Linear, BatchNorm1d) on the features flattened to
    (N * positions, C): the same function, and on the CPU much faster than mkldnn's 1x1
    convolutions on small feature maps. No bias: a BatchNorm or the next layer absorbs it, as
    in the authors' and RepDistiller's code. Linear's default init is a 1x1 convolution's.
    """

    def __init__(self, widths: Sequence[int], batch_norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip(widths[:-2], widths[1:-1]):
            layers.append(nn.Linear(in_channels, out_channels, bias=False))
            if batch_norm:
                layers.append(nn.BatchNorm1d(out_channels))
            layers.append(nn.ReLU())
        layers.append(nn.Linear(widths[-2], widths[-1], bias=False))
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, *positions) -> (N, C_out, *positions), a channels-last view."""
        channels_last = x.movedim(1, -1)
        y = super().forward(channels_last.flatten(0, -2))
        return y.unflatten(0, channels_last.shape[:-1]).movedim(-1, 1)


class Variance(nn.Module):
    """A learnable per-channel variance v = softplus(a) + eps, starting as ``start`` says (:data:`VarianceStart`)."""

    def __init__(self, channels: int, eps: float, start: str) -> None:
        super().__init__()
        self.eps = eps
        a = 5.0 if start == "a=5" else math.log(math.expm1(5.0 - eps))
        self.a = nn.Parameter(torch.full((channels,), a))

    def forward(self) -> Tensor:
        return F.softplus(self.a) + self.eps


def scaled_error(target: Tensor, mean: Tensor, variance: Tensor) -> Tensor:
    """mean over batch, channels and positions of (target - mean)^2 / v, v per channel."""
    v = variance.view(1, -1, *[1] * (target.dim() - 2))
    return ((target - mean).square() / v).mean()


def gaussian_nll(target: Tensor, mean: Tensor, variance: Tensor) -> Tensor:
    """mean of log v + (target - mean)^2 / v: twice a per-channel Gaussian's negative log-likelihood
    less its constant (log v is the same at every example and position, so its mean is over channels)."""
    return variance.log().mean() + scaled_error(target, mean, variance)
