"""VID: variational information distillation (Ahn et al., 2019), as the paper ran it and as
the community (RepDistiller) runs it."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch.nn.functional as F
from pydantic import NonNegativeFloat, model_validator
from torch import Tensor, nn

from ..networks import kaiming_init
from ..schema import Schema
from .base import Init, Loss, Method, Outputs, Pointwise, Variance, VarianceStart, check_layers, gaussian_nll


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
