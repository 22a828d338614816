"""Representations of any model by layer name (forward hooks), pidkd's own models by index, and one
clear error for every request that cannot be met."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import TensorDataset

from pidkd.distill.models import ResNetFeatures, build_model
from pidkd.distill.representations import representations
from pidkd.errors import ConfigError, EstimateWarning

CPU = torch.device("cpu")
README = Path(__file__).resolve().parents[1] / "README.md"


class TensorFeatures(nn.Module):
    """Returns (logits, features) with the features one tensor, not a list."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return self.head(features), features


class Pair(nn.Module):
    """A layer whose output is a tuple."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, -x


class WithPair(nn.Module):
    """A classifier with a tuple-returning layer and a layer its forward never calls."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair()
        self.unused = nn.Linear(6, 6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.pair(x)
        return self.fc(a + b)


def vectors(n: int = 600) -> TensorDataset:
    """n examples of 6 features and 3 classes: more than one batch of 512, to check the order."""
    generator = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 6, generator=generator), torch.randint(0, 3, (n,), generator=generator))


def images(n: int = 20) -> TensorDataset:
    """n random 3x32x32 images with labels."""
    generator = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, 3, 32, 32, generator=generator), torch.randint(0, 10, (n,), generator=generator))


def test_a_model_returning_one_feature_tensor_is_read_by_name_and_refused_by_index():
    torch.manual_seed(0)
    model, data = TensorFeatures(), vectors()
    (body,) = representations(model, data, CPU, layers=["body"])
    with torch.no_grad():
        expected = model.body(data.tensors[0])
    assert body.shape == (600, 16) and body.dtype == torch.float32
    assert torch.allclose(body, expected)  # every example, in dataset order
    with pytest.raises(ConfigError, match=r"returns a tuple of Tensor, Tensor: name the layers to read instead"):
        representations(model, data, CPU)


def test_a_plain_classifier_is_read_by_name_in_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.BatchNorm1d(32), nn.Dropout(0.5), nn.Linear(32, 3)).double()
    x, y = vectors().tensors
    data = TensorDataset(x.double(), y)
    hidden, logits = representations(model, data, CPU, layers=["2", "3"])
    model.eval()
    with torch.no_grad():
        expected = model[:3](x.double())
    assert hidden.dtype == logits.dtype == torch.float32 and logits.shape == (600, 3)
    assert torch.allclose(hidden, expected.float())  # dropout off, batch norm on running statistics
    with pytest.raises(ConfigError, match=r"layer indices need a model returning \(logits, list of feature tensors\)"):
        representations(model, data, CPU, layers=[-1])


def test_a_torchvision_resnet18_is_read_by_layer_name():
    torch.manual_seed(0)
    net, data = torchvision.models.resnet18(weights=None, num_classes=10), images()
    layer4, pooled, bn1 = representations(net, data, CPU, layers=["layer4", "avgpool", "bn1"])
    x = data.tensors[0]
    with torch.no_grad():
        expected_bn1 = net.bn1(net.conv1(x))
        expected4 = net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))))
    assert layer4.shape == (20, 512, 1, 1) and pooled.shape == (20, 512, 1, 1)
    assert torch.allclose(layer4, expected4, atol=1e-5) and torch.allclose(pooled, expected4.mean((2, 3), keepdim=True))
    # bn1's output as bn1 gave it, not as the in-place ReLU after it left it
    assert (bn1 < 0).any() and torch.allclose(bn1, expected_bn1, atol=1e-5)


@pytest.mark.parametrize("model", ["wrn-10-1", "cnn2d-student", "resnet18"])
def test_pidkd_models_by_index_are_unchanged_and_agree_with_their_layer_names(model):
    torch.manual_seed(0)
    if model == "resnet18":
        network, data, names = ResNetFeatures(torchvision.models.resnet18(weights=None)), images(), "net.layer{}"
    else:
        network, data = build_model(model, num_classes=3, in_channels=1), TensorDataset(
            torch.randn(30, 1, 8, 8), torch.randint(0, 3, (30,)))
        names = "groups.{}" if model.startswith("wrn") else "stages.{}"
    every = representations(network, data, CPU)
    with torch.no_grad():
        _, expected = network.eval()(data.tensors[0])
    assert len(every) == len(expected) and all(torch.equal(f, e) for f, e in zip(every, expected))
    last = representations(network, data, CPU, layers=(-1,))
    assert last[:-1] == [None] * (len(every) - 1) and torch.equal(last[-1], every[-1])
    offset = 1 if model == "resnet18" else 0
    named = representations(network, data, CPU, layers=[names.format(i + offset) for i in range(len(every))])
    assert all(torch.equal(f, e) for f, e in zip(named, every))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (["layer5"], r"model has no layer 'layer5'; valid names include layer4, layer3, .*\(see model.named_modules\(\)\)"),
        (["avgpol"], r"model has no layer 'avgpol'; valid names include avgpool"),
        (["head"], r"model has no layer 'head'; valid names include conv1, bn1, relu, maxpool, layer1, layer2, layer3, "
                   r"layer4, avgpool, fc \(see model.named_modules\(\)\)$"),
        (["layer1.0.relu"], r"layer 'layer1.0.relu' was called 2 times in one forward pass: name a layer that is "
                            r"called exactly once"),
        (["layer4", -1], r"layers mixes names and indices \(\['layer4', -1\]\): pass names only, or indices only"),
        ("layer4", r"layers must be a list of names, e.g. \['layer4'\]"),
        ((7,), r"layer index 7 is out of range for a model with"),
    ],
)
def test_an_impossible_request_on_a_resnet_says_what_to_ask_instead(layers, message):
    net = torchvision.models.resnet18(weights=None)
    with pytest.raises(ConfigError, match=message):
        model = ResNetFeatures(net) if isinstance(layers, tuple) else net  # indices need pidkd's (logits, features)
        representations(model, images(2), CPU, layers=layers)


def test_a_layer_that_returns_a_tuple_or_is_never_called_is_refused():
    model, data = WithPair(), vectors(10)
    with pytest.raises(ConfigError, match=r"layer 'pair' returns a tuple, not a tensor: name a layer"):
        representations(model, data, CPU, layers=["pair"])
    with pytest.raises(ConfigError, match=r"layer 'unused' was called 0 times in one forward pass"):
        representations(model, data, CPU, layers=["fc", "unused"])
    assert representations(model, data, CPU, layers=["fc"])[0].shape == (10, 3)


def test_an_empty_dataset_is_refused():
    empty = TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.int64))
    with pytest.raises(ConfigError, match="the dataset is empty"):
        representations(TensorFeatures(), empty, CPU, layers=["body"])


def readme_example() -> str:
    """The python block of the README's section on measuring your own teacher and student that reads layers."""
    section = README.read_text().split("## Measure PID for your own teacher and student", 1)[1].split("\n## ", 1)[0]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "representations(" in b]
    assert len(blocks) == 1, "the README section should show one example with representations"
    return blocks[0]


def test_the_readme_example_runs_as_written_and_warns_that_random_networks_measure_bias():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(readme_example(), str(README), "exec"), {})
    assert [w.category for w in caught] == [EstimateWarning]
