"""The shipped GPU profiles resolve to the grids and recipes of docs/method.md, and every
method runs end to end on CIFAR- and CUB-shaped files in their real formats, on the CPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from formats import write_cifar, write_cub

from pidkd.distill.methods import TED
from pidkd.distill.methods.rid import rid_schedule
from pidkd.distill.models import resnet_weights
from pidkd.distill.settings import Recipe, Speed
from pidkd.study import experiment
from pidkd.study.cli import main
from pidkd.study.profiles import Profile
from pidkd.study.results import load_representations
from pidkd.study.spec import PIDSettings

SGD = Recipe(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
             milestones=(150, 200), gamma=0.2, batch_size=128)


def test_paper_grid_is_three_datasets_three_teachers_five_methods_three_seeds():
    configs = Profile.load("paper").grid()
    assert len(configs) == 3 * (3 * 4 + 1) * 3  # baselines are shared by the teacher kinds
    assert {(c.dataset, c.teacher_kind, c.method) for c in configs} == {
        (d, t if m != "baseline" else "none", m)
        for d in ("cifar10", "cifar100", "cub200") for t in ("trained", "untrained", "noisy")
        for m in ("baseline", "kd", "vid", "rid", "ted")}
    assert {c.seed for c in configs} == {0, 1, 2}


AUTHORS_RID = {"head": "flat", "init": "kaiming", "variance_start": "a=5", "fixed_side_bn": "train", "round_length": "floor"}
"""The authors' choices where the paper is silent (docs/method.md)."""


def test_paper_cifar_runs_follow_the_intended_recipe():
    rid = Profile.load("paper").config("cifar10", "trained", "rid", 1)
    assert (rid.model, rid.teacher.model, rid.epochs, rid.augment) == ("wrn-16-1", "wrn-40-2", 300, True)
    assert rid.recipe == SGD.model_copy(update={"clip_grad_norm": 100})
    assert dict(rid.params) == {"ce_weight": 1.0, "weight": 10, "rounds": 10, "filter_fraction": 0.25, "variance_penalty": "log",
                                **AUTHORS_RID}
    assert rid.teacher.training.recipe == SGD and rid.teacher.training.epochs == 300
    assert Profile.load("paper").config("cifar10", "trained", "baseline", 1).recipe == SGD  # no clipping
    assert dict(Profile.load("paper").config("cifar10", "untrained", "vid", 0).params) == {
        "ce_weight": 1.0, "variant": "paper", "weight": 100, "init": "kaiming", "variance_start": "a=5"}
    assert dict(Profile.load("paper").config("cifar100", "noisy", "ted", 0).teacher.options) == {"dropout": 0.3}
    assert Profile.load("paper").teacher("cifar10", "untrained", 0).reestimate_bn is False
    assert (rid.pid_layers, rid.pid_dtype) == ((-1,), "float16")


def test_paper_cub_transfers_from_an_imagenet_resnet34_to_a_resnet18():
    trained = Profile.load("paper").config("cub200", "trained", "rid", 0)
    assert (trained.model, trained.options, trained.epochs) == ("resnet18", (), 120)
    fine_tuning = trained.teacher.training
    assert (fine_tuning.model, dict(fine_tuning.options), fine_tuning.epochs) == ("resnet34", {"pretrained": True}, 30)
    assert (fine_tuning.recipe.lr, fine_tuning.recipe.milestones, fine_tuning.recipe.nesterov) == (0.01, (20,), True)
    untrained = Profile.load("paper").teacher("cub200", "untrained", 0)
    assert (untrained.training, untrained.options) == (None, ())  # randomly initialised, not ImageNet
    assert Profile.load("paper").config("cifar10", "trained", "rid", 0).epochs == 300  # CUB's own sections stay CUB's


def _shown(capsys, profile, dataset, teacher, method):
    """The resolved config of a run as ``python -m pidkd show`` prints it."""
    assert main(["show", "--profile", profile, "--dataset", dataset, "--teacher", teacher, "--method", method]) == 0
    return json.loads(capsys.readouterr().out)["config"]


def test_prototype_cifar10_is_the_recipe_behind_the_anchor_numbers(capsys):
    assert len(Profile.load("paper-prototype").grid()) == 2 * 13 * 3
    rid = _shown(capsys, "paper-prototype", "cifar10", "untrained", "rid")
    assert (rid["recipe"]["lr"], rid["recipe"]["milestones"], rid["recipe"]["filter_lr"]) == (0.0025, [], 0.05)
    assert dict(rid["params"])["variance_penalty"] == "square" and not rid["augment"] and rid["epochs"] == 300
    assert AUTHORS_RID.items() <= dict(rid["params"]).items()  # the authors' code in every respect known
    assert (dict(rid["params"])["rounds"], dict(rid["params"])["filter_fraction"], dict(rid["params"])["weight"]) == (10, 0.25, 10)
    vid = Profile.load("paper-prototype").config("cifar10", "untrained", "vid", 0)
    assert [vid.recipe.learning_rate(e) for e in (0, 150, 200)] == pytest.approx([0.0025, 0.0005, 0.0001])
    assert dict(vid.params)["weight"] == 100 and vid.recipe.clip_grad_norm == 100
    teacher = _shown(capsys, "paper-prototype", "cifar10", "trained", "vid")["teacher"]["training"]
    assert (teacher["recipe"]["optimizer"], teacher["recipe"]["lr"], teacher["recipe"]["milestones"], teacher["epochs"]) == (
        "adam", 0.05, [], 300)
    assert dict(teacher["options"]) == {"block": "post"} and dict(vid.options) == {"block": "post"}
    ted = _shown(capsys, "paper-prototype", "cifar10", "trained", "ted")
    assert ted["params"] and TED.check(TED.Params(**dict(ted["params"])), 300) is None
    phases = [rid_schedule(TED.Params(**dict(ted["params"])), e, 300)[1] for e in range(300)]
    assert phases.count("filter") == 50  # at chance for its first 50 of 300 epochs
    assert rid["pid_epochs"] == list(range(20, 301, 20))


def test_prototype_cifar100_is_augmented_251_epochs_at_an_effective_001(capsys):
    vid = _shown(capsys, "paper-prototype", "cifar100", "trained", "vid")
    assert vid["augment"] and vid["epochs"] == 251 and dict(vid["options"]) == {"dropout": 0.3}
    assert (vid["recipe"]["optimizer"], vid["recipe"]["lr"], vid["recipe"]["milestones"], vid["recipe"]["gamma"]) == (
        "sgd", 0.01, [60, 120, 160], 0.2)
    assert dict(vid["params"])["weight"] == 100
    rid = _shown(capsys, "paper-prototype", "cifar100", "trained", "rid")
    assert (rid["recipe"]["lr"], rid["recipe"]["milestones"], rid["recipe"]["filter_lr"]) == (0.01, [], 0.1)
    assert (dict(rid["params"])["rounds"], dict(rid["params"])["filter_fraction"]) == (20, 0.2)
    teacher = vid["teacher"]["training"]
    assert (teacher["recipe"]["optimizer"], teacher["recipe"]["lr"], teacher["recipe"]["milestones"], teacher["epochs"]) == (
        "sgd", 0.01, [60, 120, 160], 251)
    assert vid["pid_epochs"] == [50, 100, 150, 200, 250]
    assert Profile.load("paper-prototype").pid == PIDSettings(n_clusters=10, n_components=5, layers=(-1,), dtype="float16", units="nats")
    assert Profile.load("paper").pid.n_components == 10  # notebook 2's recommendation for ten classes


def test_paper_measures_pid_when_the_authors_did(capsys):
    assert _shown(capsys, "paper", "cifar10", "trained", "rid")["pid_epochs"] == list(range(20, 301, 20))
    assert _shown(capsys, "paper", "cifar100", "untrained", "vid")["pid_epochs"] == [50, 100, 150, 200, 250, 300]
    assert Profile.load("paper").pid.n_clusters == 10


def test_quick_profile_is_a_cifar10_subset_with_a_short_schedule():
    configs = Profile.load("quick").grid()
    assert len(configs) == (2 * 2 + 1) * 3
    assert {(c.dataset, c.samples_per_class, c.epochs) for c in configs} == {("cifar10", 1000, 40)}
    teacher = next(c.teacher.training for c in configs if c.teacher_kind == "trained")
    assert (teacher.model, teacher.epochs, teacher.samples_per_class) == ("wrn-40-2", 40, 1000)


ONE_BATCH = {  # every run a single batch an epoch, two epochs (RID: a filter epoch, then a student one)
    "teacher_training.epochs": 1,
    "student_training.epochs": 2,
    "teacher_training.recipe.milestones": [],
    "student_training.recipe.milestones": [],
    "student_training.method_recipes": {},
    "datasets.cifar10.samples_per_class": 2,
    "teacher_training.recipe.batch_size": 32,
    "student_training.recipe.batch_size": 32,
    "methods.rid.rounds": 1,
    "datasets.cifar10.student_training.pid_epochs": [2],
}


@pytest.mark.parametrize("profile", ["quick", "paper-prototype"])
def test_each_method_runs_a_batch_on_cifar_files_on_the_cpu(profile, tmp_path, monkeypatch, results):
    write_cifar(tmp_path, "cifar10")
    monkeypatch.setenv("PIDKD_DATA", str(tmp_path))
    overrides = {**ONE_BATCH, "grid.datasets": ["cifar10"], "grid.methods": ["baseline", "kd", "vid", "rid", "ted"], "seeds": [0]}
    configs = Profile.load(profile, overrides).grid()
    runs = experiment.run_grid(configs, device="cpu", progress=False)
    assert {r.config.method for r in runs} == {"baseline", "kd", "vid", "rid", "ted"}
    for done in runs:
        assert done.metrics["train_loss"].notna().all() and len(done.metrics) == 2
    rid = next(r for r in runs if r.config.method == "rid")
    assert list(rid.metrics["phase"]) == ["filter", "student"]
    saved = load_representations(rid, 2)
    assert saved[:2] == [None, None] and saved[2].shape == (4, 64, 8, 8)  # the 4 test images, and saved[2].dtype == torch.float16


def test_each_distillation_runs_on_cub_files_with_loader_workers(tmp_path, monkeypatch, results):
    write_cub(tmp_path)
    monkeypatch.setenv("PIDKD_DATA", str(tmp_path))
    overrides = {"datasets.cub200.student_training": {"epochs": 2, "recipe": {"batch_size": 8, "milestones": []},
                                                      "pid_epochs": [2]},
                 "methods.rid.rounds": 1}
    for method in ("vid", "rid"):
        config = Profile.load("paper", overrides).config("cub200", "untrained", method, 0)
        done = experiment.run(config, device="cpu", progress=False, speed=Speed(workers=2))
        assert done.metrics["train_loss"].notna().all() and len(done.metrics) == 2
    assert load_representations(done, 2)[3].shape == (3, 512, 7, 7)


def test_a_fine_tuned_imagenet_teacher_loads_from_its_checkpoint_alone(tmp_path, monkeypatch, results, torch_home):
    write_cub(tmp_path)
    monkeypatch.setenv("PIDKD_DATA", str(tmp_path))
    weights = torch_home / Path(resnet_weights("resnet18").url).name
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)  # the real format
    overrides = {"datasets.cub200.teacher_model": "resnet18",
                 "datasets.cub200.teacher_training": {"epochs": 1, "recipe": {"batch_size": 8, "milestones": []}}}
    teacher = Profile.load("paper", overrides).teacher("cub200", "trained", 0)
    fine_tuned = experiment.make_teacher(teacher, "cub200", device="cpu", progress=False, speed=Speed(workers=0))
    weights.unlink()  # a student's job on another machine has the checkpoint, not ImageNet's weights
    again = experiment.make_teacher(teacher, "cub200", device="cpu", progress=False, speed=Speed(workers=0))
    assert all(torch.equal(a, b) for a, b in zip(fine_tuned.state_dict().values(), again.state_dict().values()))


def test_the_embedded_profile_mirrors_the_papers_setting(capsys):
    profile = Profile.load("embedded")
    assert len(profile.seeds) >= 5 and profile.spec.teachers.untrained.batch_norm == "initial"
    sweep = profile.spec.weight_sweep
    assert 100.0 in sweep.weights["vid"] and 10.0 in sweep.weights["rid"] and set(sweep.teachers) == {"trained", "untrained"}
    rid = _shown(capsys, "embedded", "mnist1d", "untrained", "rid")
    assert (rid["model"], rid["teacher"]["model"]) == ("wrn1d-10-1", "wrn1d-16-2") and not rid["augment"]
    assert rid["teacher"]["training"] is None and rid["teacher"]["reestimate_bn"] is False  # the paper's untrained teacher
    assert (dict(rid["params"])["rounds"], dict(rid["params"])["filter_fraction"]) == (10, 0.25)
    sized = {"weight", "rounds", "filter_fraction"}  # the miniature's sizes; every choice follows `paper`
    for method in ("vid", "rid", "ted"):
        ours, papers = (dict(p.config(d, "untrained", method, 0).params) for p, d in
                        ((profile, "mnist1d"), (Profile.load("paper"), "cifar10")))
        assert {k: v for k, v in ours.items() if k not in sized} == {k: v for k, v in papers.items() if k not in sized}
    assert AUTHORS_RID.items() <= dict(profile.config("mnist1d", "trained", "rid", 0).params).items()
    assert not any("classifier_init" in dict(c.options) for c in profile.grid())  # the models' default: the authors'
    assert rid["recipe"]["optimizer"] == "sgd" and rid["recipe"]["clip_grad_norm"] == 100
    vid = _shown(capsys, "embedded", "mnist1d", "trained", "vid")  # the teacher sees more than the students, no validation signal
    assert vid["validation_per_class"] > 0 and vid["teacher"]["training"]["validation_per_class"] == vid["validation_per_class"]
    assert vid["teacher"]["training"]["samples_per_class"] > vid["samples_per_class"]
