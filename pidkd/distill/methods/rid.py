"""RID, the paper's redundant information distillation, and TED, an RID configuration."""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveInt
from torch import Tensor, nn

from ...errors import ConfigError
from ..networks import kaiming_init
from ..schema import Schema
from .base import (
    FILTER,
    STUDENT,
    Init,
    Loss,
    Method,
    Outputs,
    Pointwise,
    Variance,
    VarianceStart,
    check_layers,
    scaled_error,
)


class GlobalAveragePool(nn.Module):
    """Average over all positions: (N, C, *positions) -> (N, C)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2).mean(-1)


def rid_head(kind: str, channels: int, positions: int | None, num_classes: int) -> nn.Sequential:
    """h_l on a filtered map of ``channels`` channels: ``flat``, the authors' (Flatten, ReLU, Linear
    from every position), or ``pooled``, pidkd's own (a Linear on the channel means)."""
    if kind == "pooled":
        return nn.Sequential(GlobalAveragePool(), nn.Linear(channels, num_classes))
    if positions is None:
        raise ConfigError("RID's flat head needs feature_positions (pidkd.distill.models.feature_positions), or use head: pooled")
    return nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(channels * positions, num_classes))


VARIANCE_PENALTIES = {"log": torch.log, "square": torch.square}
"""RID's student-phase term in the variance v, by name."""


def rid_schedule(params: RID.Params, epoch: int, epochs: int) -> tuple[int, str]:
    """The round and phase of epoch ``epoch`` (0-based) of ``epochs`` under RID's schedule (see :class:`RID`)."""
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch {epoch} is not in 0..{epochs - 1}")
    rounds = min(params.rounds, epochs)
    if params.round_length == "floor":
        length = epochs // rounds
        index = epoch // length
        start = index * length
        filter_epochs = math.ceil(params.filter_fraction * length)  # e mod L < rho L, in floating point
    else:
        index = ((epoch + 1) * rounds - 1) // epochs
        start = index * epochs // rounds
        length = (index + 1) * epochs // rounds - start
        filter_epochs = math.ceil(round(params.filter_fraction * length, 6))
    if filter_epochs >= length:
        raise ConfigError(
            f"rounds={params.rounds} and filter_fraction={params.filter_fraction} leave no student "
            f"epoch in a round of {length} of {epochs} epochs; use fewer rounds, a smaller "
            f"filter_fraction or more epochs"
        )
    return index, FILTER if epoch - start < filter_epochs else STUDENT


class RID(Method):
    """Redundant information distillation (the paper's method): a teacher filter keeps of the
    teacher's feature only what predicts the label, and the student, through its own filter, is
    pulled towards that filtered feature; the two are trained in alternating phases.

    Schedule: the E epochs are split into R' = min(R, E) rounds, the first fraction rho of each
    round the filter phase. ``round_length``: ``floor`` (the authors') makes every round
    L = floor(E / R') epochs long, the remainder a last, shorter round, and an epoch e a filter
    epoch when e mod L < rho L; ``balanced`` (pidkd's own) makes round r cover epochs
    floor(r E / R') to floor((r + 1) E / R') - 1 and the first ceil(rho L) epochs of each round of L
    the filter's (rho L rounded to 6 decimals first, so that 0.1 * 30 gives 3).

    The paper leaves open, with the authors' choice the default (docs/method.md lists them):
    ``variance_penalty``, the student phase's term in v: ``log`` (the paper's Gaussian likelihood)
    or ``square`` (mean v^2, what the authors' code ran); ``head``: see :func:`rid_head`; ``init``:
    see :data:`Init`; ``variance_start``: see :data:`VarianceStart`; ``fixed_side_bn``: the side a
    phase does not train runs in ``train`` mode (batch statistics, updated running statistics; the
    authors') or ``eval`` mode (pidkd's own).
    """

    class Params(Schema):
        ce_weight: NonNegativeFloat = 1.0
        weight: NonNegativeFloat = 10.0
        rounds: PositiveInt = 10
        filter_fraction: float = Field(0.25, ge=0, le=1)
        variance_penalty: Literal["log", "square"] = "log"
        head: Literal["flat", "pooled"] = "flat"
        init: Init = "kaiming"
        variance_start: VarianceStart = "a=5"
        fixed_side_bn: Literal["train", "eval"] = "train"
        round_length: Literal["floor", "balanced"] = "floor"

    def __init__(self, params: Params, **shape: Any) -> None:
        super().__init__(params, **shape)
        check_layers(self.student_channels, self.teacher_channels)
        self.variance_penalty = VARIANCE_PENALTIES[params.variance_penalty]
        pairs = list(zip(self.student_channels, self.teacher_channels))
        positions = self.feature_positions or (None,) * len(pairs)
        self.teacher_filters = nn.ModuleList(Pointwise((t, t, s)) for s, t in pairs)
        self.heads = nn.ModuleList(
            rid_head(params.head, s, p, self.num_classes) for s, p in zip(self.student_channels, positions, strict=True)
        )
        self.student_filters = nn.ModuleList(Pointwise((s, 2 * s, s)) for s in self.student_channels)
        self.variances = nn.ModuleList(Variance(s, 1e-3, params.variance_start) for s in self.student_channels)
        if params.init == "kaiming":
            kaiming_init(self)
        self.round: int | None = None
        """The round of the current epoch, set by ``begin_epoch``."""

    @classmethod
    def check(cls, params: Params, epochs: int) -> None:
        """Every full round must leave the student at least one epoch."""
        for epoch in range(epochs):
            rid_schedule(params, epoch, epochs)

    def schedule(self, epoch: int, epochs: int) -> tuple[int, str]:
        """The round and phase of epoch ``epoch`` (0-based) of ``epochs``."""
        return rid_schedule(self.params, epoch, epochs)

    def phase(self, epoch: int, epochs: int) -> str:
        return self.schedule(epoch, epochs)[1]

    def begin_epoch(self, epoch: int, epochs: int) -> str:
        """Record the round; with ``fixed_side_bn: eval`` hold the side that is fixed in this phase
        in eval mode, so its BatchNorm statistics do not move."""
        self.round, phase = self.schedule(epoch, epochs)
        fixed_trains = self.params.fixed_side_bn == "train"
        for part in (self.teacher_filters, self.heads):
            part.train(self.training and (phase == FILTER or fixed_trains))
        self.student_filters.train(self.training and (phase == STUDENT or fixed_trains))
        return phase

    def student_trains(self, phase: str) -> bool:
        """The student also runs in training mode in the filter phase under ``fixed_side_bn: train``."""
        return phase == STUDENT or self.params.fixed_side_bn == "train"

    def phase_parameters(self, phase: str) -> list[nn.Parameter]:
        """FILTER: the teacher filters and heads; STUDENT: the student filters and the variances."""
        if phase == FILTER:
            parts = (self.teacher_filters, self.heads)
        else:
            parts = (self.student_filters, self.variances)
        return [p for part in parts for p in part.parameters()]

    def loss(self, phase: str, student: Outputs, teacher: Outputs | None, y: Tensor) -> Loss:
        """FILTER: sum_l CE(h_l(f_t,l(T_l)), y), plus from the second round on
        sum_l mean((f_s,l(S_l) - f_t,l(T_l))^2 / v_l) with the student side fixed (terms
        filter_ce, filter_distill); under ``fixed_side_bn: train`` the student filters run in every
        filter epoch, as the authors' did, so their running statistics move alike.
        STUDENT: ce_weight * CE + weight * sum_l mean(log v_l + (f_s,l(S_l) - f_t,l(T_l))^2 / v_l)
        with the teacher filter fixed (v_l^2 in place of log v_l for variance_penalty square);
        terms ce, variance (the log v_l part) and distill (the rest)."""
        if self.round is None:
            raise RuntimeError(f"call begin_epoch(epoch, epochs) before {type(self).__name__}.loss")
        pairs = list(enumerate(zip(student.features, teacher.features, strict=True)))
        zero = torch.zeros((), device=y.device)
        if phase == FILTER:
            total, heads, matching = zero, zero, zero
            matched = self.round > 0
            for l, (s, t) in pairs:
                # a clone: the teacher's inference tensors cannot be saved for backward
                filtered = self.teacher_filters[l](t.clone())
                ce = F.cross_entropy(self.heads[l](filtered), y)
                total, heads = total + ce, heads + ce.detach()
                if matched or self.params.fixed_side_bn == "train":
                    with torch.no_grad():
                        target, variance = self.student_filters[l](s), self.variances[l]()
                if matched:
                    error = scaled_error(filtered, target, variance)
                    total, matching = total + error, matching + error.detach()
            return Loss(total, {"filter_ce": heads, "filter_distill": matching})
        distill, penalty = zero, zero
        for l, (s, t) in pairs:
            with torch.no_grad():
                filtered = self.teacher_filters[l](t)
            variance = self.variances[l]()
            term = self.variance_penalty(variance).mean()
            distill = distill + term + scaled_error(filtered, self.student_filters[l](s), variance)
            penalty = penalty + term.detach()
        p = self.params
        ce = p.ce_weight * F.cross_entropy(student.logits, y)
        total = ce + p.weight * distill
        variance_part = p.weight * penalty
        return Loss(total, {"ce": ce.detach(), "variance": variance_part,
                            "distill": p.weight * distill.detach() - variance_part})


class TED(RID):
    """Task-aware layer-wise distillation (Liang et al., 2023): RID's machinery in a single round,
    the teacher filters trained first (rho = 1/8), then the student."""

    class Params(RID.Params):
        rounds: PositiveInt = 1
        filter_fraction: float = Field(0.125, ge=0, le=1)
