"""Distillation methods. Each is a module that owns its extra parameters, maps an epoch to a
phase, and gives the loss of a batch in that phase, by named terms; the training loop does the rest.
Each declares its settings as a ``Params`` schema, which profiles are validated against."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator
from torch import Tensor, nn

from .errors import ConfigError, check_name
from .models import kaiming_init
from .schema import Schema, validate

STUDENT = "student"
"""The phase in which the student (and the method's student-side parts) is trained."""
FILTER = "filter"
"""RID's teacher-filter phase: only the teacher-side filters and heads are trained."""

Init = Literal["kaiming", "pytorch"]
"""How a method's own layers start: ``kaiming``, the authors' (Kaiming-uniform, fan-out, ReLU gain,
zero bias: :func:`pidkd.models.kaiming_init`), or ``pytorch``, PyTorch's defaults (pidkd's own)."""
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
        (:func:`pidkd.models.feature_positions`); RID's flat head needs them."""

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
        raise ConfigError("RID's flat head needs feature_positions (pidkd.models.feature_positions), or use head: pooled")
    return nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(channels * positions, num_classes))


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


class KD(Method):
    """Hinton et al.'s logit distillation: match the teacher's softened class probabilities."""

    class Params(Schema):
        ce_weight: NonNegativeFloat = 1.0
        weight: NonNegativeFloat = 1.0
        temperature: PositiveFloat = 4.0

    def loss(self, phase: str, student: Outputs, teacher: Outputs | None, y: Tensor) -> Loss:
        """ce_weight * CE + weight * tau^2 * KL(softmax(t / tau) || softmax(s / tau)), per example."""
        p = self.params
        tau = p.temperature
        kl = F.kl_div(
            F.log_softmax(student.logits / tau, dim=1),
            F.log_softmax(teacher.logits / tau, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        ce, distill = p.ce_weight * F.cross_entropy(student.logits, y), p.weight * tau**2 * kl
        return Loss(ce + distill, {"ce": ce.detach(), "distill": distill.detach()})


@dataclass(frozen=True)
class VIDVariant:
    """What differs between the authors' VID and the community's (RepDistiller) one."""

    batch_norm: bool
    eps: float
    weight: float
    init: str
    variance_start: str


VID_VARIANTS: dict[str, VIDVariant] = {
    "paper": VIDVariant(batch_norm=True, eps=1e-3, weight=100.0, init="kaiming", variance_start="a=5"),
    "community": VIDVariant(batch_norm=False, eps=1e-5, weight=1.0, init="pytorch", variance_start="v=5"),
}


def vid_regressor(student: int, teacher: int, variant: VIDVariant) -> Pointwise:
    """r_l: three 1x1 convs from the student's channels to the teacher's; the paper's is 2C_t wide
    inside with BatchNorm, the community's C_t wide without."""
    hidden = 2 * teacher if variant.batch_norm else teacher
    return Pointwise((student, hidden, hidden, teacher), batch_norm=variant.batch_norm)


class VID(Method):
    """Variational information distillation (Ahn et al., 2019): per layer, the student's feature
    through a regressor is the mean of a Gaussian over the teacher's feature; maximise its likelihood."""

    class Params(Schema):
        variant: Literal["paper", "community"] = "paper"
        ce_weight: NonNegativeFloat = 1.0
        weight: NonNegativeFloat
        init: Init
        variance_start: VarianceStart
        """Defaults of ``weight``, ``init`` and ``variance_start``: the variant's (the paper's 100,
        kaiming, a=5; the community's 1, pytorch, v=5)."""

        @model_validator(mode="before")
        @classmethod
        def _variant_defaults(cls, fields: Any) -> Any:
            if isinstance(fields, Mapping):  # (an unknown variant is refused anyway)
                name = fields.get("variant", "paper")
                variant = VID_VARIANTS.get(name if isinstance(name, str) else "paper", VID_VARIANTS["paper"])
                defaults = {field: getattr(variant, field) for field in ("weight", "init", "variance_start")}
                return {**defaults, **{k: v for k, v in fields.items() if v is not None}}
            return fields

    def __init__(self, params: Params, **shape: Any) -> None:
        super().__init__(params, **shape)
        check_layers(self.student_channels, self.teacher_channels)
        spec = VID_VARIANTS[params.variant]
        pairs = list(zip(self.student_channels, self.teacher_channels))
        self.regressors = nn.ModuleList(vid_regressor(s, t, spec) for s, t in pairs)
        self.variances = nn.ModuleList(Variance(t, spec.eps, params.variance_start) for t in self.teacher_channels)
        if params.init == "kaiming":
            kaiming_init(self)

    def loss(self, phase: str, student: Outputs, teacher: Outputs | None, y: Tensor) -> Loss:
        """ce_weight * CE + weight * sum_l mean(0.5 * (log v + (T_l - r_l(S_l))^2 / v))."""
        nll = sum(
            0.5 * gaussian_nll(t, regressor(s), variance())
            for regressor, variance, s, t in zip(
                self.regressors, self.variances, student.features, teacher.features, strict=True
            )
        )
        ce, distill = self.params.ce_weight * F.cross_entropy(student.logits, y), self.params.weight * nll
        return Loss(ce + distill, {"ce": ce.detach(), "distill": distill.detach()})


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


METHODS: dict[str, type[Method]] = {
    "baseline": Baseline,
    "kd": KD,
    "vid": VID,
    "rid": RID,
    "ted": TED,
}


def build_method(
    name: str,
    *,
    student_channels: tuple[int, ...],
    teacher_channels: tuple[int, ...],
    num_classes: int,
    feature_positions: tuple[int, ...] | None = None,
    **params: object,
) -> Method:
    """Make method ``name`` for features with the given channel counts (and positions, which RID's
    flat head needs), with its parameters (validated against its ``Params``: unknown ones and bad
    values are ConfigErrors)."""
    cls = METHODS[check_name("method", name, METHODS)]
    return cls(validate(cls.Params, params, f"methods.{name}"), student_channels=student_channels,
               teacher_channels=teacher_channels, num_classes=num_classes, feature_positions=feature_positions)
