"""KD: Hinton et al.'s distillation of the teacher's softened class probabilities."""
from __future__ import annotations

import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveFloat
from torch import Tensor

from ..schema import Schema
from .base import Loss, Method, Outputs


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
