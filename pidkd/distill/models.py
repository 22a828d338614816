"""The networks by name: wide residual networks (2-D for CIFAR, 1-D for MNIST-1D) and small CNNs
for the embedded datasets (:mod:`~pidkd.distill.networks`), and torchvision ResNets for CUB-200.

Every model's ``forward(x)`` returns ``(logits, features)``, where ``features`` is the list of
the outputs of its stages (the representations that are distilled and measured), and every
model has ``feature_channels``, the channel count of each feature. Build them by name with
:func:`build_model`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, ConfigError, WeightsNotFoundError, check_name
from .networks import CNN_PRESETS, SmallCNN, WideResNet

if TYPE_CHECKING:
    from torchvision import models as tvm

RESNET_WEIGHTS: dict[str, str] = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
}
"""The ResNets, each with the torchvision enum of the ImageNet weights that ``pretrained=True``
loads (its ``IMAGENET1K_V1``); torchvision is imported only when a ResNet is built."""



# --------------------------------------------------------------------------- torchvision ResNets


def resnet_weights(name: str) -> tvm.WeightsEnum:
    """The torchvision ImageNet weights that ``pretrained=True`` loads for ResNet ``name``."""
    from torchvision import models

    return getattr(models, RESNET_WEIGHTS[check_name("ResNet", name, RESNET_WEIGHTS)]).IMAGENET1K_V1


def imagenet_state_dict(name: str) -> dict[str, Tensor]:
    """ResNet ``name``'s ImageNet weights from torch's cache (``$TORCH_HOME/hub/checkpoints``),
    downloaded there first if missing; a failed download or an unreadable file says what to do."""
    weights = resnet_weights(name)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except OSError as error:  # no network (URLError is an OSError) or an unwritable cache
        raise WeightsNotFoundError(
            f"ImageNet weights of {name} are not in {cached} and could not be downloaded ({error}); "
            f"fetch {weights.url} on a machine with internet access and copy it to {cached}") from error
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"{cached} cannot be read as {name}'s ImageNet weights ({type(error).__name__}); "
            f"delete it so that it is downloaded again, or copy {weights.url} there") from error


class ResNetFeatures(nn.Module):
    """A torchvision ResNet that also returns its four stage outputs (layer1 to layer4)."""

    def __init__(self, net: tvm.ResNet) -> None:
        super().__init__()
        self.net = net
        self.feature_channels: tuple[int, ...] = tuple(
            _stage_channels(getattr(net, f"layer{i}")) for i in range(1, 5)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        net = self.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        features = []
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            x = layer(x)
            features.append(x)
        return net.fc(net.avgpool(x).flatten(1)), features


def _stage_channels(layer: nn.Sequential) -> int:
    """The output channels of a torchvision ResNet stage (its last block's last BatchNorm)."""
    from torchvision.models.resnet import Bottleneck

    last = layer[-1]
    return (last.bn3 if isinstance(last, Bottleneck) else last.bn2).num_features


def build_resnet(
    name: str, num_classes: int, in_channels: int = 3, pretrained: bool = False
) -> ResNetFeatures:
    """torchvision ResNet ``name`` with a ``num_classes`` head, from ImageNet weights if ``pretrained``.

    Randomly initialised nets keep torchvision's own initialisation. A pretrained net gets a
    fresh linear head; other input channel counts replace the stem and so need ``pretrained=False``.
    """
    from torchvision import models

    check_name("ResNet", name, RESNET_WEIGHTS)
    if pretrained and in_channels != 3:
        raise ConfigError(f"pretrained {name} takes 3 input channels, not {in_channels}")
    constructor: Callable[..., tvm.ResNet] = getattr(models, name)
    if pretrained:
        net = constructor(weights=None)
        net.load_state_dict(imagenet_state_dict(name))
        net.fc = nn.Linear(net.fc.in_features, num_classes)
    else:
        net = constructor(weights=None, num_classes=num_classes)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    return ResNetFeatures(net)


# --------------------------------------------------------------------------- the registry

WRN_NAME = re.compile(r"wrn(1d)?-(\d+)-(\d+)")
"""``wrn-<depth>-<widen>`` for images, ``wrn1d-<depth>-<widen>`` for signals."""
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    "wrn": ("block", "dropout", "classifier_init"),
    "cnn": ("channels", "classifier_init"),
    "resnet": ("pretrained",),
}
"""The options each family of models accepts as keyword arguments of :func:`build_model`."""


def model_names() -> list[str]:
    """The registered model names; ``wrn-<depth>-<widen>`` stands for every 2-D WRN and
    ``wrn1d-<depth>-<widen>`` for every 1-D one."""
    cnns = [f"cnn{d}{preset}" for d in ("1d", "2d") for preset in ("", *(f"-{p}" for p in CNN_PRESETS))]
    return ["wrn-<depth>-<widen>", "wrn1d-<depth>-<widen>", *cnns, *RESNET_WEIGHTS]


def build_model(name: str, num_classes: int, in_channels: int = 3, **options: object) -> nn.Module:
    """Build model ``name`` (see :func:`model_names`) for ``num_classes`` classes.

    Options: WRN (2-D or 1-D) ``dropout`` (0.0) and ``block`` ("preact" or "post"); small CNN ``channels``
    (three stage widths, default those of the preset; required for plain ``cnn1d``/``cnn2d``);
    WRN and small CNN ``classifier_init`` ("kaiming", the authors', or "pytorch", see
    :data:`~pidkd.distill.networks.CLASSIFIER_INITS`); ResNet ``pretrained`` (False).
    """
    is_wrn = name.startswith(("wrn-", "wrn1d-"))
    if not is_wrn:
        check_name("model", name, model_names())
    family = "wrn" if is_wrn else "cnn" if name.startswith("cnn") else "resnet"
    unknown = sorted(set(options) - set(MODEL_OPTIONS[family]))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(MODEL_OPTIONS[family])}"
        )
    if num_classes < 1 or in_channels < 1:
        raise ConfigError(
            f"num_classes ({num_classes}) and in_channels ({in_channels}) must be positive"
        )
    if family == "wrn":
        match = WRN_NAME.fullmatch(name)
        if match is None:
            raise ConfigError(
                f"model name {name!r} is invalid: WRNs are named wrn-<depth>-<widen> (images) or "
                f"wrn1d-<depth>-<widen> (signals), e.g. wrn-40-2"
            )
        one_d, depth, widen = match.groups()
        return WideResNet(int(depth), int(widen), num_classes, in_channels, dim=1 if one_d else 2, **options)
    if family == "cnn":
        kind, _, preset = name.partition("-")
        if "channels" not in options and not preset:
            raise ConfigError(
                f"model {name!r} needs channels=(a, b, c), or use {kind}-teacher or {kind}-student"
            )
        channels = options.pop("channels", CNN_PRESETS.get(preset))
        return SmallCNN(int(kind[3]), num_classes, in_channels, channels, **options)
    return build_resnet(name, num_classes, in_channels, **options)


def feature_positions(model: nn.Module, example: Tensor) -> tuple[int, ...]:
    """The positions (H * W, or L) of each distilled feature of ``model`` on inputs shaped like
    ``example`` (one input, given in the dtype of the model's parameters), from a forward pass in eval
    mode that changes nothing."""
    training = model.training
    parameter = next(model.parameters())
    with torch.no_grad():
        _, features = model.eval()(example[None].to(parameter.device, parameter.dtype))
    model.train(training)
    return tuple(f[0, 0].numel() for f in features)
