"""The training loop: schedule, determinism, checkpoints, and resuming after a crash."""
from __future__ import annotations

import copy
import math
import os

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch.utils.data import TensorDataset

from pidkd.distill.batching import AugmentedTensors, CropFlip
from pidkd.distill.files import load_checkpoint
from pidkd.distill.loop import fit
from pidkd.distill.methods import build_method
from pidkd.distill.models import build_model
from pidkd.distill.representations import representations
from pidkd.distill.schema import validate
from pidkd.distill.settings import Precision, Recipe, Speed, resolve_device
from pidkd.distill.teachers import Noise, Teacher
from pidkd.errors import CheckpointError, ConfigError, RunInterrupted

RECIPE = Recipe(optimizer="sgd", lr=0.05, milestones=(2,), gamma=0.5, batch_size=32, clip_grad_norm=5.0)


def _method(name, student, teacher=None):
    channels = student.feature_channels
    return build_method(
        name,
        student_channels=channels,
        teacher_channels=teacher.feature_channels if teacher else channels,
        num_classes=10,
    )


def _without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_learning_rate_follows_milestones_with_an_explicit_factor():
    recipe = Recipe(lr=0.05, milestones=(200, 150), gamma=0.2)
    assert [recipe.learning_rate(e) for e in (0, 149, 150, 199)] == pytest.approx([0.05, 0.05, 0.01, 0.01])
    assert recipe.learning_rate(200) == pytest.approx(0.002)


def test_a_filter_rate_holds_for_the_filter_phase_only():
    recipe = Recipe(lr=0.0025, milestones=(150,), filter_lr=0.05)
    assert [recipe.learning_rate(e, "filter") for e in (0, 200)] == [0.05, 0.05]
    assert [recipe.learning_rate(e, "student") for e in (0, 200)] == pytest.approx([0.0025, 0.0005])


@pytest.mark.parametrize("bad", [dict(optimizer="lbfgs"), dict(lr=0.0), dict(batch_size=0), dict(filter_lr=-1.0),
                                 dict(lr=float("inf")), dict(momentum=1.0), dict(milestones=[-1]), dict(nesterov=True, momentum=0.0)])
def test_bad_recipe_is_refused_naming_the_field(bad):
    field = next(iter(bad)) if len(bad) == 1 else "nesterov"
    with pytest.raises(ValidationError, match=field):
        Recipe(**bad)
    with pytest.raises(ConfigError, match=f"^recipe: .*{field}"):
        validate(Recipe, bad, "recipe")


def test_cpu_thread_count_is_set_explicitly():
    previous = torch.get_num_threads()
    try:
        assert resolve_device("cpu", threads=1).type == "cpu"
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_metrics_per_epoch_and_learning(digits_small, student):
    train, test = digits_small
    recipe = Recipe(lr=0.2, milestones=(3,), gamma=0.5, batch_size=32)
    rows = fit(student, _method("baseline", student), train, test, recipe=recipe, epochs=4, seed=0, device="cpu", progress=False)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["lr"] for r in rows] == pytest.approx([0.2, 0.2, 0.2, 0.1])
    assert {"phase", "train_loss", "test_acc", "seconds"} <= set(rows[0])
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert rows[-1]["test_acc"] > 0.3  # ten classes: chance is 0.1


def test_validation_accuracy_is_measured_without_changing_the_training(digits_small):
    train, test = digits_small
    runs = []
    for validation in (None, test):
        torch.manual_seed(0)
        net = build_model("cnn2d-student", 10, 1)
        rows = fit(net, _method("baseline", net), train, test, recipe=RECIPE, epochs=2, seed=0, device="cpu",
                   progress=False, validation_set=validation)
        runs.append(_without_seconds(rows))
    assert "val_acc" not in runs[0][0]
    assert [r["val_acc"] for r in runs[1]] == [r["test_acc"] for r in runs[1]]
    assert [{k: v for k, v in r.items() if k != "val_acc"} for r in runs[1]] == runs[0]


def test_evaluating_every_few_epochs_measures_the_same_accuracies(digits_small):
    train, test = digits_small
    runs = []
    for every in (1, 2):
        torch.manual_seed(0)
        net = build_model("cnn2d-student", 10, 1)
        runs.append(fit(net, _method("baseline", net), train, test, recipe=RECIPE, epochs=3, seed=0, device="cpu",
                        progress=False, validation_set=test, evaluate_every=every))
    every, sparse = runs
    assert [r["test_acc"] for r in sparse][1:] == [r["test_acc"] for r in every][1:]  # epochs 2 and 3 (the last)
    assert math.isnan(sparse[0]["test_acc"]) and math.isnan(sparse[0]["val_acc"])
    assert [r["train_loss"] for r in sparse] == [r["train_loss"] for r in every]
    with pytest.raises(ConfigError, match="evaluate_every must be a positive"):
        fit(net, _method("baseline", net), train, test, recipe=RECIPE, epochs=1, seed=0, device="cpu",
            progress=False, evaluate_every=0)


def test_same_seed_gives_identical_metrics(digits_small):
    train, test = digits_small
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        net = build_model("cnn2d-student", 10, 1)
        runs.append(fit(net, _method("baseline", net), train, test, recipe=RECIPE, epochs=2, seed=3, device="cpu", progress=False))
    assert _without_seconds(runs[0]) == _without_seconds(runs[1])


class Crash(Exception):
    pass


def _crash_after(method, calls):
    """Make ``method.loss`` raise after ``calls`` batches, as a killed process would stop."""
    original, seen = method.loss, []

    def loss(*args, **kwargs):
        seen.append(1)
        if len(seen) > calls:
            raise Crash
        return original(*args, **kwargs)

    method.loss = loss


@pytest.mark.parametrize("kind,augmented,speed", [
    ("trained", False, Speed(checkpoint_seconds=0)),
    ("noisy", False, Speed(checkpoint_seconds=0)),
    ("trained", True, Speed(checkpoint_seconds=0)),
    ("trained", True, Speed(precision="fp16", channels_last=True, checkpoint_seconds=0)),  # the CUDA fp16 path
])
def test_a_run_resumed_after_a_crash_mid_epoch_ends_like_an_uninterrupted_one(tmp_path, digits_small, kind, augmented, speed):
    train, test = digits_small
    if augmented:  # crops and flips drawn per batch: the teacher runs on every batch
        train = AugmentedTensors(*train.tensors, augment=CropFlip(1, (0.0,)))
    name = "kd" if kind == "trained" else "vid"

    def setup():
        torch.manual_seed(1)
        teacher = Teacher(build_model("cnn2d-teacher", 10, 1), kind, Noise(fraction=0.5, sigma=1.0) if kind == "noisy" else None)
        torch.manual_seed(0)
        net = build_model("cnn2d-student", 10, 1)
        return net, teacher, _method(name, net, teacher)

    def train_until_done(path, crash_at=None):
        net, teacher, method = setup()
        if crash_at is not None:
            _crash_after(method, crash_at)
        rows = fit(net, method, train, test, recipe=RECIPE, epochs=3, seed=0, teacher=teacher, device="cpu",
                   checkpoint=path, progress=False, speed=speed)
        return net, rows

    reference, expected = train_until_done(tmp_path / "whole.pt")
    batches_per_epoch = -(-len(train) // RECIPE.batch_size)
    with pytest.raises(Crash):
        train_until_done(tmp_path / "crashed.pt", crash_at=batches_per_epoch + 2)  # mid epoch 2
    assert len(load_checkpoint(tmp_path / "crashed.pt")["metrics"]) == 1
    resumed, rows = train_until_done(tmp_path / "crashed.pt")
    assert _without_seconds(rows) == _without_seconds(expected)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoints_are_written_as_often_as_asked_and_after_the_last_epoch(tmp_path, digits_small, student, monkeypatch):
    train, test = digits_small
    written = []
    monkeypatch.setattr("pidkd.distill.loop.save_atomic", lambda state, path: written.append(len(state["metrics"])))
    for seconds in (0, 3600):
        fit(student, _method("baseline", student), train, test, recipe=RECIPE, epochs=3, seed=0, device="cpu",
            checkpoint=tmp_path / f"{seconds}.pt", progress=False, speed=Speed(checkpoint_seconds=seconds))
    assert written == [1, 2, 3, 3]
    with pytest.raises(ValidationError, match="checkpoint_seconds"):
        Speed(checkpoint_seconds=-1)


def test_checkpoints_load_with_weights_only(tmp_path, digits_small, student):
    train, test = digits_small
    path = tmp_path / "checkpoint.pt"
    fit(student, _method("baseline", student), train, test, recipe=RECIPE, epochs=1, seed=0, device="cpu", checkpoint=path, progress=False)
    state = torch.load(path, weights_only=True)
    assert set(state) >= {"student", "method", "optimizers", "metrics"}
    assert not list(tmp_path.glob("*.tmp"))


def test_a_truncated_checkpoint_names_the_file_and_the_fix(tmp_path, digits_small, student):
    train, test = digits_small
    path = tmp_path / "checkpoint.pt"
    fit(student, _method("baseline", student), train, test, recipe=RECIPE, epochs=1, seed=0, device="cpu", checkpoint=path, progress=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="checkpoint.pt.*delete it"):
        fit(student, _method("baseline", student), train, test, recipe=RECIPE, epochs=2, seed=0, device="cpu", checkpoint=path, progress=False)


def test_a_method_that_needs_a_teacher_refuses_to_run_without_one(digits_small, student):
    train, test = digits_small
    with pytest.raises(ConfigError, match="needs a teacher"):
        fit(student, _method("kd", student), train, test, recipe=RECIPE, epochs=1, seed=0, device="cpu", progress=False)


def test_the_teacher_is_bitwise_unchanged_by_distillation(digits_small, student, teacher_network):
    train, test = digits_small
    teacher = Teacher(teacher_network, "trained")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    fit(student, _method("vid", student, teacher), train, test, recipe=RECIPE, epochs=2, seed=0, teacher=teacher, device="cpu", progress=False)
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_diverging_loss_stops_the_run_at_that_epoch_and_names_the_term(digits_small, student, tmp_path):
    """A diverged run is a result: it ends at the epoch whose loss became non-finite, that row names
    the term, and a rerun returns it as it is instead of training on."""
    train, test = digits_small
    x, y = train.tensors
    poisoned = TensorDataset(x.clone().fill_(float("nan")), y)
    rows = fit(student, _method("baseline", student), poisoned, test, recipe=RECIPE, epochs=3, seed=0, device="cpu",
               progress=False, checkpoint=tmp_path / "checkpoint.pt")
    assert len(rows) == 1 and rows[0]["diverged"] == "ce_loss" and not math.isfinite(rows[0]["train_loss"])
    assert rows[0]["test_acc"] == rows[0]["test_acc"]  # evaluated: the diverged student's accuracy is its result
    again = fit(student, _method("baseline", student), poisoned, test, recipe=RECIPE, epochs=3, seed=0, device="cpu",
                progress=False, checkpoint=tmp_path / "checkpoint.pt")
    assert len(again) == 1


def test_a_non_finite_representation_stops_the_run_as_diverged(digits_small, student):
    train, test = digits_small
    rows = fit(student, _method("baseline", student), train, test, recipe=RECIPE, epochs=3, seed=0, device="cpu",
               progress=False, after_epoch=lambda epoch, network: "representation" if epoch == 2 else None)
    assert [r.get("diverged") for r in rows] == [None, "representation"]


def test_ctrl_c_saves_the_last_finished_epoch_and_says_how_to_resume(digits_small, student, tmp_path):
    """Interrupted in epoch 3 with checkpoints once a minute: epochs 1-2 are kept, and rerunning
    ends with the numbers of an uninterrupted run."""
    train, test = digits_small
    checkpoint = tmp_path / "checkpoint.pt"

    def interrupt(epoch, network):
        if epoch == 2:
            raise KeyboardInterrupt

    fresh = copy.deepcopy(student)
    with pytest.raises(RunInterrupted, match="interrupted at epoch 2 of 4; rerun the same command to resume"):
        fit(student, _method("baseline", student), train, test, recipe=RECIPE, epochs=4, seed=0, device="cpu",
            progress=False, checkpoint=checkpoint, after_epoch=interrupt, speed=Speed(checkpoint_seconds=3600))
    assert len(torch.load(checkpoint, weights_only=True)["metrics"]) == 1  # epoch 2 was interrupted before its end
    resumed = fit(student, _method("baseline", student), train, test, recipe=RECIPE, epochs=4, seed=0, device="cpu",
                  progress=False, checkpoint=checkpoint)
    straight = fit(fresh, _method("baseline", fresh), train, test, recipe=RECIPE, epochs=4, seed=0, device="cpu",
                   progress=False)
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in straight]


UNIT_ROUNDOFF = {"bf16": 2.0**-8, "fp16": 2.0**-11}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_and_channels_last_compute_like_fp32(digits_small, precision):
    """The CUDA options, forced on the CPU: one step's loss and gradient as in fp32, up to rounding.

    Measured over 20 seeds (both kernel paths of this machine): the loss differs from fp32's by at most
    2.3e-4 (bf16) and 3.6e-5 (fp16) relative, 17x and 14x below each format's unit roundoff, the bound
    here; gradients agree to a cosine of at least 0.9975 and 0.9994, the bound here is 0.99. A short
    training run is not a test of this: rounding moves its trajectory, by 11 points on one machine."""
    train, _ = digits_small
    x, y = train.tensors[0][:32], train.tensors[1][:32]
    for seed in range(3):
        losses, grads = [], []
        for choice in ("fp32", precision):
            torch.manual_seed(seed)
            net = build_model("cnn2d-student", 10, 1)
            speed = Speed(precision=choice, channels_last=choice != "fp32")
            with Precision(torch.device("cpu"), choice).autocast():
                logits, _ = net(x.contiguous(memory_format=speed.layout(torch.device("cpu"), x[0])))
                loss = F.cross_entropy(logits, y)
            loss.backward()
            losses.append(loss.item())
            grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
        assert abs(losses[1] - losses[0]) <= UNIT_ROUNDOFF[precision] * losses[0]
        assert F.cosine_similarity(*grads, dim=0) > 0.99


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_through_the_loop(digits_small, precision):
    """fit runs the low-precision path (fp16 with its gradient scaler) to finite, falling losses."""
    train, test = digits_small
    torch.manual_seed(0)
    net = build_model("cnn2d-student", 10, 1)
    rows = fit(net, _method("baseline", net), train, test, recipe=Recipe(lr=0.2, batch_size=32), epochs=2, seed=0,
               device="cpu", progress=False, speed=Speed(precision=precision, channels_last=True))
    assert rows[1]["train_loss"] < rows[0]["train_loss"]
    assert Precision(torch.device("cpu")).dtype is None and Precision(torch.device("cpu"), "fp16").scaler is not None
    with pytest.raises(ValidationError, match="precision"):
        Speed(precision="fp8")


def test_fp64_trains_every_part_in_float64(digits_small, teacher_network):
    """fp64 casts the student, the method, the teacher and the batches (cached teacher outputs too), and
    evaluates the float64 student on the float32 test set; MPS, without float64, is refused."""
    train, test = digits_small
    torch.manual_seed(0)
    net = build_model("cnn2d-student", 10, 1)
    teacher = Teacher(teacher_network, "noisy", Noise(fraction=0.5, sigma=1.0))
    method = _method("vid", net, teacher)
    rows = fit(net, method, train, test, recipe=Recipe(lr=0.05, batch_size=32), epochs=1, seed=0, teacher=teacher,
               device="cpu", progress=False, speed=Speed(precision="fp64"))
    parts = (net, method, teacher)
    assert {p.dtype for part in parts for p in [*part.parameters(), *part.buffers()] if p.is_floating_point()} == {
        torch.float64}
    assert math.isfinite(rows[0]["train_loss"]) and 0 <= rows[0]["test_acc"] <= 1
    assert Precision(torch.device("cpu"), "fp64").name == "fp64" and Precision(torch.device("cpu"), "fp64").dtype is None
    with pytest.raises(ConfigError, match="MPS has no float64"):
        Precision(torch.device("mps"), "fp64")


FORCED_KERNELS = "ATEN_CPU_CAPABILITY" in os.environ


@pytest.mark.skipif(FORCED_KERNELS, reason="torch.compile's CPU backend fails when ATEN_CPU_CAPABILITY is forced "
                    "(its generated C++ does not compile under 'default' and crashed under 'avx2'): a PyTorch limitation")
def test_speed_options_change_how_not_what(digits_small):
    """torch.compile gives the same training (up to floating-point rounding); workers must be >= 0."""
    train, test = digits_small
    rows = []
    for speed in (Speed(), Speed(compile=True)):
        torch.manual_seed(0)
        net = build_model("cnn2d-student", 10, 1)
        rows.append(fit(net, _method("baseline", net), train, test, recipe=RECIPE, epochs=1, seed=0,
                        device="cpu", progress=False, speed=speed))
    assert rows[1][0]["train_loss"] == pytest.approx(rows[0][0]["train_loss"], rel=1e-4)
    assert rows[1][0]["test_acc"] == pytest.approx(rows[0][0]["test_acc"], abs=2 / len(test))
    with pytest.raises(ValidationError, match="workers"):
        Speed(workers=-1)


def test_representations_collect_only_the_layers_asked_for(digits_small, student):
    _, test = digits_small
    every = representations(student, test, torch.device("cpu"))
    last = representations(student, test, torch.device("cpu"), layers=(-1,))
    assert [f.shape[1] for f in every] == [8, 16, 32] and last[:2] == [None, None]
    assert torch.equal(last[2], every[2])
