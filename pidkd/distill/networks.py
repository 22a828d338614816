"""The networks pidkd builds itself: wide residual networks (2-D for CIFAR, 1-D for MNIST-1D) and
small CNNs for the embedded datasets, with the authors' initialisation. Each ``forward(x)`` returns
``(logits, features)``, the features being its stages' outputs, and each has ``feature_channels``."""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, check_name

WRN_BLOCKS = ("preact", "post")
"""The WRN block kinds: pre-activation (Zagoruyko & Komodakis) and post-activation."""

CNN_PRESETS: dict[str, tuple[int, int, int]] = {"teacher": (32, 64, 128), "student": (8, 16, 32)}
"""Stage widths of the named small-CNN presets (``cnn2d-teacher`` and so on)."""

CLASSIFIER_INITS = ("kaiming", "pytorch")
"""How a network's linear classifier starts: ``kaiming`` as its convolutions (the authors' init of
every conv and linear layer), or ``pytorch`` (PyTorch's default weights, zero bias; pidkd's own)."""


def kaiming_init(module: nn.Module) -> None:
    """The authors' initialisation (``init_model_weights``): Kaiming-uniform weights (fan-out, ReLU
    gain) and zero biases for every convolution and linear layer of ``module``, as 1x1 convolutions
    with fan-out their output count."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_weights(model: nn.Module, classifier_init: str = "kaiming") -> None:
    """Kaiming-uniform convolutions (fan-out, as the WRN code), BatchNorm 1 and 0, zero linear bias;
    linear weights Kaiming-uniform too, or PyTorch's defaults for ``classifier_init="pytorch"``."""
    check_name("classifier init", classifier_init, CLASSIFIER_INITS)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and classifier_init == "pytorch":
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            kaiming_init(m)


CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d}
NORM: dict[int, type[nn.Module]] = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
"""Convolution and BatchNorm by the number of spatial dimensions."""


def conv3(in_channels: int, out_channels: int, stride: int = 1, dim: int = 2) -> nn.Module:
    """A bias-free convolution with 3 taps along each of ``dim`` axes (3x3 in 2-D) that keeps the
    spatial size at stride 1."""
    return CONV[dim](in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


# --------------------------------------------------------------------------- wide ResNets


class PreActBlock(nn.Module):
    """The WRN basic block: BN-ReLU-conv-BN-ReLU-(dropout)-conv plus a shortcut.

    When the shape changes the shortcut is a 1x1 convolution applied, as in the original code,
    to the activated input BN-ReLU(x); otherwise it is x itself.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float, dim: int = 2) -> None:
        super().__init__()
        self.bn1 = NORM[dim](in_channels)
        self.conv1 = conv3(in_channels, out_channels, stride, dim)
        self.bn2 = NORM[dim](out_channels)
        self.conv2 = conv3(out_channels, out_channels, dim=dim)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = CONV[dim](in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        act = F.relu(self.bn1(x))
        out = self.conv1(act)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + (x if self.shortcut is None else self.shortcut(act))


class PostActBlock(nn.Module):
    """A post-activation basic block: conv-BN-ReLU-(dropout)-conv-BN, add the shortcut, ReLU.

    This is the block of the authors' CIFAR-10 prototype; the shortcut is a 1x1 convolution and
    BatchNorm when the shape changes.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float, dim: int = 2) -> None:
        super().__init__()
        self.conv1 = conv3(in_channels, out_channels, stride, dim)
        self.bn1 = NORM[dim](out_channels)
        self.conv2 = conv3(out_channels, out_channels, dim=dim)
        self.bn2 = NORM[dim](out_channels)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                CONV[dim](in_channels, out_channels, 1, stride=stride, bias=False),
                NORM[dim](out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.dropout(F.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class WideResNet(nn.Module):
    """WRN-depth-widen (Zagoruyko & Komodakis, 2016), for images (``dim=2``, 32x32 in CIFAR) or
    signals (``dim=1``, MNIST-1D's 40 samples).

    A 3-tap stem to 16 channels, three groups of (depth - 4) / 6 basic blocks with 16k, 32k, 64k
    channels at strides 1, 2, 2, then (for pre-activation blocks) BN-ReLU, global average
    pooling and a linear classifier. In 1-D every 3x3 convolution has 3 taps and every 1x1 one
    tap, so a 1-D WRN is the 2-D one with one spatial axis fewer. The features are the outputs
    of the three groups as the original WRN code returns them: for pre-activation blocks that is
    the residual sum before the next block's BN-ReLU; for post-activation blocks it is after the
    block's final ReLU.
    """

    def __init__(
        self,
        depth: int,
        widen: int,
        num_classes: int,
        in_channels: int = 3,
        dropout: float = 0.0,
        block: str = "preact",
        dim: int = 2,
        classifier_init: str = "kaiming",
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ConfigError(
                f"WRN depth {depth} is invalid: it must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...)"
            )
        if widen < 1:
            raise ConfigError(f"WRN widen factor {widen} is invalid: it must be at least 1")
        check_name("WRN block", block, WRN_BLOCKS)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout {dropout} is invalid: it must be in [0, 1)")
        if dim not in CONV:
            raise ConfigError(f"WRN dimension {dim} is invalid: it must be 1 or 2")
        blocks_per_group = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        block_cls = PreActBlock if block == "preact" else PostActBlock
        norm = NORM[dim]

        self.stem = conv3(in_channels, 16, dim=dim)
        self.stem_act = nn.Identity() if block == "preact" else nn.Sequential(norm(16), nn.ReLU())
        groups = []
        channels = 16
        for width, stride in zip(widths, (1, 2, 2)):
            layers = [
                block_cls(channels if i == 0 else width, width, stride if i == 0 else 1, dropout, dim)
                for i in range(blocks_per_group)
            ]
            groups.append(nn.Sequential(*layers))
            channels = width
        self.groups = nn.ModuleList(groups)
        self.head_act = nn.Sequential(norm(channels), nn.ReLU()) if block == "preact" else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)
        self.feature_channels: tuple[int, ...] = widths
        init_weights(self, classifier_init)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        out = self.stem_act(self.stem(x))
        features = []
        for group in self.groups:
            out = group(out)
            features.append(out)
        out = self.head_act(out).flatten(2).mean(dim=2)
        return self.fc(out), features


# --------------------------------------------------------------------------- small CNNs


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU stages, global average pooling and a linear classifier.

    For the embedded datasets: 2-D for scikit-learn digits (1x8x8, features at 8x8, 4x4,
    2x2 with 3x3 kernels) and 1-D for MNIST-1D (1x40, features at 40, 20, 10 with kernel 5).
    Stages 2 and 3 downsample with stride 2, so nets of any widths give features of the same
    sizes and teacher and student can be matched position by position.
    """

    def __init__(
        self, dim: int, num_classes: int, in_channels: int, channels: Sequence[int], classifier_init: str = "kaiming"
    ) -> None:
        super().__init__()
        if dim not in (1, 2):
            raise ConfigError(f"SmallCNN dimension {dim} is invalid: it must be 1 or 2")
        channels = tuple(channels)
        if len(channels) != 3 or not all(isinstance(c, int) and c > 0 for c in channels):
            raise ConfigError(f"channels {channels} is invalid: give three positive integers")
        conv, bn = CONV[dim], NORM[dim]
        kernel = 5 if dim == 1 else 3
        stages = []
        previous = in_channels
        for width, stride in zip(channels, (1, 2, 2)):
            stages.append(
                nn.Sequential(
                    conv(previous, width, kernel, stride=stride, padding=kernel // 2, bias=False),
                    bn(width),
                    nn.ReLU(),
                )
            )
            previous = width
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(previous, num_classes)
        self.feature_channels: tuple[int, ...] = channels
        init_weights(self, classifier_init)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return self.fc(x.flatten(2).mean(dim=2)), features
