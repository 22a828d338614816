"""Teachers: frozen, eval-only, the noisy corruption, and BatchNorm re-estimation."""
from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from pidkd.distill import loop, settings
from pidkd.distill.methods import Outputs, build_method
from pidkd.distill.teachers import Noise, Teacher, reestimate_batchnorm
from pidkd.errors import ConfigError


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 3, 10)])
def test_noise_touches_only_the_bottom_fraction_of_rows(shape):
    feature = torch.ones(shape)
    out = Noise(fraction=0.25, sigma=1.0).apply(feature, _generator())
    rows = shape[2]
    assert torch.equal(out[:, :, : rows - round(rows / 4)], feature[:, :, : rows - round(rows / 4)])
    assert not torch.equal(out[:, :, rows - round(rows / 4) :], feature[:, :, rows - round(rows / 4) :])
    assert torch.equal(feature, torch.ones(shape))  # the input is not modified in place


def test_added_and_replacing_noise_differ_by_the_clean_feature():
    feature = torch.full((4, 2, 6, 6), 3.0)
    added = Noise(fraction=1.0, sigma=0.5).apply(feature, _generator(7))
    replaced = Noise(fraction=1.0, sigma=0.5, replace=True).apply(feature, _generator(7))
    assert torch.allclose(added - replaced, feature)
    assert replaced.std().item() == pytest.approx(0.5, rel=0.2)


def test_noise_is_a_function_of_the_generator_seed():
    feature = torch.zeros(2, 2, 4, 4)
    noise = Noise(fraction=0.5, sigma=1.0)
    assert torch.equal(noise.apply(feature, _generator(1)), noise.apply(feature, _generator(1)))
    assert not torch.equal(noise.apply(feature, _generator(1)), noise.apply(feature, _generator(2)))


@pytest.mark.parametrize("fraction, sigma, field", [(0.0, 1.0, "fraction"), (1.5, 1.0, "fraction"),
                                                   (0.5, -1.0, "sigma"), (0.5, float("nan"), "sigma")])
def test_impossible_noise_is_refused_naming_the_field(fraction, sigma, field):
    with pytest.raises(ValidationError, match=f"{field}\n"):
        Noise(fraction=fraction, sigma=sigma)


def test_a_teacher_is_frozen_and_stays_in_eval_mode(teacher_network):
    teacher = Teacher(teacher_network, "trained")
    teacher.train()
    assert not teacher.training and not teacher.model.training
    assert not any(p.requires_grad for p in teacher.parameters())
    out = teacher(torch.randn(3, 1, 8, 8))
    assert isinstance(out, Outputs) and len(out.features) == 3
    assert teacher.corrupt(out, _generator()) is out


def test_teacher_kinds_and_noise_must_agree(teacher_network):
    with pytest.raises(ConfigError, match="valid names: noisy, trained, untrained"):
        Teacher(teacher_network, "pretrained")
    with pytest.raises(ConfigError, match="noisy teacher needs noise"):
        Teacher(teacher_network, "noisy")
    with pytest.raises(ConfigError):
        Teacher(teacher_network, "trained", Noise(fraction=0.5, sigma=1.0))


def test_noisy_teacher_corrupts_every_feature_but_not_the_logits(teacher_network):
    teacher = Teacher(teacher_network, "noisy", Noise(fraction=0.5, sigma=2.0))
    clean = teacher(torch.randn(3, 1, 8, 8))
    noisy = teacher.corrupt(clean, _generator())
    assert torch.equal(noisy.logits, clean.logits)
    assert all(not torch.equal(a, b) for a, b in zip(noisy.features, clean.features))


def test_batchnorm_reestimation_changes_statistics_not_weights(teacher_network):
    weights = {k: v.clone() for k, v in teacher_network.named_parameters()}
    inputs = [torch.randn(16, 1, 8, 8) * 5 + 2 for _ in range(3)]
    first = next(m for m in teacher_network.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    hook = first.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    reestimate_batchnorm(teacher_network, inputs)
    hook.remove()
    assert not teacher_network.training
    assert all(torch.equal(weights[k], v) for k, v in teacher_network.named_parameters())
    # equal-sized batches: the cumulative average of batch means is the mean over all inputs
    expected = torch.cat(seen).mean(dim=(0, 2, 3))
    assert torch.allclose(first.running_mean, expected, atol=1e-5)
    assert first.momentum == 0.1


def test_a_batch_statistics_teacher_normalises_each_batch_by_its_own(teacher_network, digits_small):
    """The authors' untrained teacher under PyTorch Lightning 2.1: frozen, its BatchNorm in training
    mode whatever the loop asks, so a batch's features do not depend on the running statistics."""
    teacher = Teacher(teacher_network, "untrained", batch_statistics=True)
    teacher.eval()
    norms = [m for m in teacher.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.training for m in norms) and not teacher.model.training
    assert not any(p.requires_grad for p in teacher.parameters())
    x = digits_small[0].tensors[0][:16]
    with torch.no_grad():
        before = teacher(x).features[-1]
        for m in norms:
            m.running_mean.add_(3.0)
        torch.testing.assert_close(teacher(x).features[-1], before)


def test_the_loop_does_not_cache_a_batch_statistics_teachers_outputs(teacher_network, student, digits_small, monkeypatch):
    """Its outputs depend on the batch, so they are computed batch by batch, as the authors' were."""
    def cached(*args):
        raise AssertionError("the outputs of a batch-statistics teacher were cached")

    monkeypatch.setattr(loop, "_with_teacher_outputs", cached)
    method = build_method("vid", student_channels=student.feature_channels,
                          teacher_channels=teacher_network.feature_channels, num_classes=10)
    teacher = Teacher(teacher_network, "untrained", batch_statistics=True)
    rows = loop.fit(student, method, *digits_small, recipe=settings.Recipe(batch_size=16), epochs=1, seed=0,
                     teacher=teacher, device="cpu", progress=False)
    assert len(rows) == 1
