"""The models keep the contract the rest of pidkd relies on: (logits, features), feature_channels,
sizes that match between teacher and student, the expected parameter counts, named errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from pidkd.distill.models import build_model, model_names, resnet_weights
from pidkd.errors import CheckpointError, ConfigError, WeightsNotFoundError

# name, options, input shape (batch 2), expected feature channels, expected feature sizes
CASES = [
    ("wrn-40-2", {}, (3, 32, 32), (32, 64, 128), [(32, 32), (16, 16), (8, 8)]),
    ("wrn-16-1", {}, (3, 32, 32), (16, 32, 64), [(32, 32), (16, 16), (8, 8)]),
    ("wrn-16-2", {"block": "post"}, (3, 32, 32), (32, 64, 128), [(32, 32), (16, 16), (8, 8)]),
    ("wrn-10-1", {"dropout": 0.3}, (3, 32, 32), (16, 32, 64), [(32, 32), (16, 16), (8, 8)]),
    ("wrn1d-40-2", {"block": "post"}, (1, 40), (32, 64, 128), [(40,), (20,), (10,)]),
    ("wrn1d-16-1", {"block": "post"}, (1, 40), (16, 32, 64), [(40,), (20,), (10,)]),
    ("wrn1d-10-1", {"dropout": 0.3}, (2, 40), (16, 32, 64), [(40,), (20,), (10,)]),
    ("cnn2d-teacher", {}, (1, 8, 8), (32, 64, 128), [(8, 8), (4, 4), (2, 2)]),
    ("cnn2d-student", {}, (1, 8, 8), (8, 16, 32), [(8, 8), (4, 4), (2, 2)]),
    ("cnn2d", {"channels": (4, 5, 6)}, (1, 8, 8), (4, 5, 6), [(8, 8), (4, 4), (2, 2)]),
    ("cnn1d-teacher", {}, (1, 40), (32, 64, 128), [(40,), (20,), (10,)]),
    ("cnn1d-student", {}, (1, 40), (8, 16, 32), [(40,), (20,), (10,)]),
    ("cnn1d", {"channels": [8, 16, 32]}, (1, 40), (8, 16, 32), [(40,), (20,), (10,)]),
    ("resnet18", {}, (3, 64, 64), (64, 128, 256, 512), [(16, 16), (8, 8), (4, 4), (2, 2)]),
    ("resnet34", {}, (3, 64, 64), (64, 128, 256, 512), [(16, 16), (8, 8), (4, 4), (2, 2)]),
    ("resnet50", {}, (3, 64, 64), (256, 512, 1024, 2048), [(16, 16), (8, 8), (4, 4), (2, 2)]),
]


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "options", "shape", "channels", "sizes"), CASES, ids=[c[0] for c in CASES])
def test_forward_returns_logits_and_features(name, options, shape, channels, sizes):
    model = build_model(name, num_classes=7, in_channels=shape[0], **options)
    logits, features = model(torch.randn(2, *shape))
    assert logits.shape == (2, 7)
    assert isinstance(features, list)
    assert model.feature_channels == channels
    assert [f.shape[1] for f in features] == list(channels)
    assert [tuple(f.shape[2:]) for f in features] == sizes
    assert all(f.shape[0] == 2 for f in features)


def test_every_registered_name_is_covered():
    covered = {c[0] for c in CASES} | {"wrn-<depth>-<widen>", "wrn1d-<depth>-<widen>"}
    assert set(model_names()) <= covered


@pytest.mark.parametrize(
    ("teacher", "student", "shape"),
    [("wrn-40-2", "wrn-16-1", (3, 32, 32)), ("wrn1d-40-2", "wrn1d-16-1", (1, 40)),
     ("cnn2d-teacher", "cnn2d-student", (1, 8, 8)), ("cnn1d-teacher", "cnn1d-student", (1, 40))],
)
def test_teacher_and_student_features_have_the_same_sizes(teacher, student, shape):
    x = torch.randn(2, *shape)
    _, t = build_model(teacher, 10, shape[0])(x)
    _, s = build_model(student, 10, shape[0])(x)
    assert [f.shape[2:] for f in t] == [f.shape[2:] for f in s]


def test_wrn_parameter_counts():
    teacher = count_parameters(build_model("wrn-40-2", 10))
    student = count_parameters(build_model("wrn-16-1", 10))
    assert teacher == 2_243_546
    assert student == 175_066
    assert abs(count_parameters(build_model("wrn-40-2", 100)) - 2.2e6) < 0.06e6
    assert abs(count_parameters(build_model("wrn-16-1", 100)) - 0.175e6) < 0.01e6


def test_wrn1d_parameter_counts():
    """A 1-D WRN has a third of the 2-D one's convolution weights (3 taps, not 3x3) and the same
    BatchNorm and classifier parameters."""
    counts = {(name, block): count_parameters(build_model(name, 10, 1, block=block))
              for name in ("wrn1d-40-2", "wrn1d-16-2", "wrn1d-16-1", "wrn1d-10-1") for block in ("preact", "post")}
    assert counts == {
        ("wrn1d-40-2", "preact"): 759_386, ("wrn1d-40-2", "post"): 759_834,
        ("wrn1d-16-2", "preact"): 239_706, ("wrn1d-16-2", "post"): 240_154,
        ("wrn1d-16-1", "preact"): 61_018, ("wrn1d-16-1", "post"): 61_210,
        ("wrn1d-10-1", "preact"): 28_314, ("wrn1d-10-1", "post"): 28_506,
    }


@pytest.mark.parametrize("block", ["preact", "post"])
def test_a_1d_wrn_is_the_2d_one_on_signals_one_row_high(block):
    """Given the middle row of each 3x3 kernel, the 2-D WRN computes on (N, C, 1, L) inputs exactly
    what the 1-D one computes on (N, C, L): the padding rows above and below are zeros."""
    torch.manual_seed(0)
    two_d = build_model("wrn-16-1", 10, 1, block=block)
    one_d = build_model("wrn1d-16-1", 10, 1, block=block)
    # each kernel's middle row: 3 taps of a 3x3 kernel, the one tap of a 1x1 kernel
    one_d.load_state_dict({k: v[:, :, v.shape[2] // 2] if v.dim() == 4 else v for k, v in two_d.state_dict().items()})
    x = torch.randn(4, 1, 40)
    for mode in (True, False):
        logits_2d, features_2d = two_d.train(mode)(x[:, :, None])
        logits_1d, features_1d = one_d.train(mode)(x)
        torch.testing.assert_close(logits_1d, logits_2d, rtol=1e-4, atol=1e-5)
        for f1, f2 in zip(features_1d, features_2d):
            torch.testing.assert_close(f1, f2.squeeze(2), rtol=1e-4, atol=1e-5)


def test_small_cnn_parameter_counts():
    expected = {
        "cnn2d-teacher": 94_186, "cnn2d-student": 6_274, "cnn1d-teacher": 53_098, "cnn1d-student": 3_682
    }
    assert {n: count_parameters(build_model(n, 10, 1)) for n in expected} == expected


def test_post_block_has_no_final_batchnorm_and_dropout_is_used():
    post = build_model("wrn-16-1", 10, block="post")
    preact = build_model("wrn-16-1", 10, dropout=0.5)
    assert isinstance(post.head_act, torch.nn.Identity)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in preact.modules())
    x = torch.randn(2, 3, 32, 32)
    preact.train()
    torch.manual_seed(0)
    a, _ = preact(x)
    torch.manual_seed(1)
    b, _ = preact(x)
    assert not torch.allclose(a, b)  # dropout is active in training mode
    preact.eval()
    assert torch.equal(preact(x)[0], preact(x)[0])


def test_same_seed_gives_identical_weights():
    for name in ("wrn-16-1", "cnn1d-student", "resnet18"):
        torch.manual_seed(3)
        a = build_model(name, 10, 1 if name.startswith("cnn") else 3).state_dict()
        torch.manual_seed(3)
        b = build_model(name, 10, 1 if name.startswith("cnn") else 3).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        torch.manual_seed(4)
        c = build_model(name, 10, 1 if name.startswith("cnn") else 3).state_dict()
        assert not all(torch.equal(a[k], c[k]) for k in a)


def test_batchnorm_and_linear_bias_initialisation():
    model = build_model("wrn-16-1", 10)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any() for m in bns)
    assert not model.fc.bias.any()


@pytest.mark.parametrize("name", ["wrn-16-1", "cnn2d-student", "resnet18"])
def test_runs_under_inference_mode(name):
    in_channels, shape = (1, (1, 8, 8)) if name.startswith("cnn") else (3, (3, 32, 32))
    model = build_model(name, 5, in_channels).eval()
    with torch.inference_mode():
        logits, features = model(torch.randn(1, *shape))
    assert logits.shape == (1, 5) and len(features) == len(model.feature_channels)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError, match="valid names: .*cnn1d-student.*resnet18.*wrn-<depth>-<widen>"):
        build_model("vgg16", 10)


@pytest.mark.parametrize("name", ["wrn-41-2", "wrn-4-1", "wrn-16-0", "wrn1d-41-2", "wrn1d-16-0"])
def test_invalid_wrn_shape_says_why(name):
    with pytest.raises(ConfigError, match="depth|widen"):
        build_model(name, 10)


def test_malformed_wrn_name():
    with pytest.raises(ConfigError, match="wrn-<depth>-<widen>"):
        build_model("wrn-40", 10)


@pytest.mark.parametrize(
    ("name", "options", "listed"),
    [("wrn-16-1", {"width": 2}, "block, dropout"), ("cnn2d-student", {"dropout": 0.1}, "channels"),
     ("resnet18", {"block": "post"}, "pretrained")],
)
def test_unknown_option_lists_valid_options(name, options, listed):
    with pytest.raises(ConfigError, match=f"valid options: {listed}"):
        build_model(name, 10, **options)


@pytest.mark.parametrize(
    ("name", "options"),
    [("wrn-16-1", {"block": "bottleneck"}), ("wrn-16-1", {"dropout": 1.0}), ("cnn2d", {}),
     ("cnn2d", {"channels": (8, 16)}), ("cnn1d", {"channels": (8, 0, 4)})],
)
def test_invalid_option_values(name, options):
    with pytest.raises(ConfigError):
        build_model(name, 10, 1, **options)


def test_resnet_weights_are_selected_without_download():
    assert "resnet18" in resnet_weights("resnet18").url
    assert resnet_weights("resnet50").name == "IMAGENET1K_V1"
    assert "resnet50" in resnet_weights("resnet50").url
    with pytest.raises(ConfigError, match="valid names"):
        resnet_weights("resnet101")


def test_resnet_input_channels():
    model = build_model("resnet18", 4, in_channels=1)
    logits, features = model(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, 4) and len(features) == 4
    with pytest.raises(ConfigError, match="3 input channels"):
        build_model("resnet18", 4, in_channels=1, pretrained=True)


def test_pretrained_resnet_loads_cached_imagenet_weights_and_gets_a_new_head(torch_home):
    torch.manual_seed(0)
    imagenet = torchvision.models.resnet18(weights=None)  # a stand-in for the real file, same format
    torch.save(imagenet.state_dict(), torch_home / Path(resnet_weights("resnet18").url).name)
    model = build_model("resnet18", 200, pretrained=True)
    assert torch.equal(model.net.layer4[1].conv2.weight, imagenet.layer4[1].conv2.weight)
    assert model.net.fc.out_features == 200
    logits, features = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 200) and [f.shape[1] for f in features] == [64, 128, 256, 512]


def test_missing_or_corrupt_imagenet_weights_say_where_to_put_them(torch_home):
    file = torch_home / Path(resnet_weights("resnet34").url).name
    with pytest.raises(WeightsNotFoundError, match=f"could not be downloaded.*copy it to {file}"):
        build_model("resnet34", 200, pretrained=True)
    file.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=f"{file} cannot be read as resnet34's ImageNet weights"):
        build_model("resnet34", 200, pretrained=True)
