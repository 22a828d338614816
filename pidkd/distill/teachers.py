"""Teachers a student distils from: trained, untrained (random and frozen), and noisy (a trained
teacher whose distilled features are corrupted at distillation time); see docs/method.md."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from pydantic import Field, NonNegativeFloat
from torch import Tensor, nn

from ..errors import ConfigError, check_name
from .methods import Outputs
from .schema import Schema

KINDS = ("trained", "untrained", "noisy")


class Noise(Schema):
    """Gaussian noise of std ``sigma`` on the bottom ``fraction`` of the rows of each feature map,
    added to the features or, with ``replace``, replacing them (the authors' corruption)."""

    fraction: float = Field(gt=0, le=1)
    sigma: NonNegativeFloat
    replace: bool = False

    def apply(self, feature: Tensor, generator: torch.Generator) -> Tensor:
        """Corrupt one feature map (N, C, H, W) or sequence (N, C, L) along its first spatial axis."""
        rows = feature.shape[2]
        corrupted = max(1, round(self.fraction * rows))
        # drawn in float32, or float64 for float64 features: float32 normal draws differ in their last bits
        # between CPUs (vectorised kernels), which float64 training would carry
        dtype = torch.promote_types(feature.dtype, torch.float32)
        noise = torch.randn(feature[:, :, rows - corrupted :].shape, generator=generator, device=feature.device,
                            dtype=dtype)
        noise = (self.sigma * noise).to(feature.dtype)
        out = feature.clone()
        bottom = out[:, :, rows - corrupted :]
        bottom.copy_(noise if self.replace else bottom + noise)
        return out


class Teacher(nn.Module):
    """A frozen network of one kind; its parameters never change and it always runs in eval mode,
    but for ``batch_statistics``: then its BatchNorm layers normalise every batch by its own
    statistics (the authors' untrained teacher under PyTorch Lightning 2.1; docs/method.md)."""

    def __init__(self, model: nn.Module, kind: str, noise: Noise | None = None, batch_statistics: bool = False) -> None:
        super().__init__()
        check_name("teacher kind", kind, KINDS)
        if (kind == "noisy") != (noise is not None):
            raise ConfigError("a noisy teacher needs noise=Noise(...), and only a noisy teacher takes it")
        self.model = model.requires_grad_(False)
        self.kind = kind
        self.noise = noise
        self.batch_statistics = batch_statistics
        self.feature_channels = model.feature_channels
        self.train()

    def train(self, mode: bool = True) -> Teacher:
        """A teacher stays in eval mode: its BatchNorm statistics are part of what is frozen
        (with ``batch_statistics`` its BatchNorm layers stay in training mode)."""
        super().train(False)
        for m in self.model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train(self.batch_statistics)
        return self

    def forward(self, x: Tensor) -> Outputs:
        logits, features = self.model(x)
        return Outputs(logits, list(features))

    def corrupt(self, outputs: Outputs, generator: torch.Generator) -> Outputs:
        """The outputs a student sees: the noisy teacher's features corrupted, others unchanged."""
        if self.noise is None:
            return outputs
        return Outputs(outputs.logits, [self.noise.apply(f, generator) for f in outputs.features])


def reestimate_batchnorm(model: nn.Module, inputs: Iterable[Tensor]) -> nn.Module:
    """Recompute BatchNorm running statistics as plain averages over ``inputs`` (weights unchanged).

    A fresh network keeps BatchNorm's initial statistics (mean 0, variance 1), so its feature
    scale can be far from a trained one's; this re-estimation is offered as a variant of the untrained teacher.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    model.train()
    with torch.no_grad():
        for x in inputs:
            model(x)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    return model.eval()
