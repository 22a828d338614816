"""Configs from profiles, run keys, cached runs, and runs.csv."""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
import torch
import pytest

from pidkd import experiment, measures
from pidkd.errors import ConfigError

FAST = {"teacher_training.epochs": 1, "student_training.epochs": 2}


def test_a_baseline_has_no_teacher_so_all_teacher_kinds_share_it():
    keys = {experiment.resolve("embedded", "digits", kind, "baseline", 0).key for kind in ("trained", "untrained", "noisy")}
    assert len(keys) == 1


def test_teacher_kinds_resolve_to_the_intended_teachers():
    trained = experiment.resolve("embedded", "mnist1d", "trained", "vid", 0).teacher
    untrained = experiment.resolve("embedded", "mnist1d", "untrained", "vid", 0).teacher
    noisy = experiment.resolve("embedded", "mnist1d", "noisy", "vid", 0).teacher
    assert trained.run.model == trained.model == "cnn1d-teacher" and trained.run.method == "baseline"
    assert untrained.run is None and untrained.reestimate_bn
    assert noisy.run == trained.run and noisy.noise is not None and trained.noise is None


def test_keys_depend_on_every_setting():
    base = experiment.resolve("embedded", "digits", "trained", "rid", 0)
    assert base.key == experiment.resolve("embedded", "digits", "trained", "rid", 0).key
    assert base.key != experiment.resolve("embedded", "digits", "trained", "rid", 1).key
    assert base.key != experiment.resolve("embedded", "digits", "trained", "rid", 0, {"methods.rid.weight": 2.0}).key
    assert base.key != experiment.resolve("embedded", "digits", "trained", "rid", 0, {"teacher_training.epochs": 3}).key


@pytest.mark.parametrize(
    "args, message",
    [
        (("embedded", "mnist", "trained", "vid", 0), "unknown dataset 'mnist'; valid names: digits, mnist1d"),
        (("embedded", "digits", "clever", "vid", 0), "unknown teacher kind 'clever'; valid names: noisy, trained, untrained"),
        (("embedded", "digits", "trained", "fitnet", 0), "unknown method 'fitnet'; valid names: baseline, kd, rid, ted, vid"),
        (("nope", "digits", "trained", "vid", 0), "unknown profile 'nope'"),
    ],
)
def test_unknown_names_list_the_valid_ones(args, message):
    with pytest.raises(ConfigError, match=message):
        experiment.resolve(*args)


def test_bad_overrides_say_what_is_wrong():
    with pytest.raises(ConfigError, match="no section 'nonsense'"):
        experiment.resolve("embedded", "digits", "trained", "vid", 0, {"nonsense.epochs": 1})
    with pytest.raises(ConfigError, match="unknown field momentumm in recipe"):
        experiment.resolve("embedded", "digits", "trained", "vid", 0, {"student_training.recipe.momentumm": 0.5})


def test_the_paper_profile_resolves_to_the_wrn_pair_and_the_papers_weights():
    vid = experiment.resolve("paper", "cifar10", "trained", "vid", 0)
    rid = experiment.resolve("paper", "cifar10", "untrained", "rid", 0)
    assert (vid.model, vid.teacher.model) == ("wrn-16-1", "wrn-40-2")
    assert dict(vid.params)["weight"] == 100 and dict(rid.params)["weight"] == 10
    assert (dict(rid.params)["rounds"], dict(rid.params)["filter_fraction"]) == (10, 0.25)
    assert vid.epochs == 300 and vid.recipe.milestones == (150, 200) and vid.recipe.clip_grad_norm == 100


def test_a_finished_run_is_returned_from_the_cache(results, monkeypatch):
    config = experiment.resolve("embedded", "digits", "trained", "kd", 0, FAST)
    first = experiment.run(config, device="cpu", progress=False)
    assert first.directory == results / "embedded" / "runs" / config.key
    assert len(first.metrics) == 2 and (first.directory / "config.json").exists()
    teacher_dir = experiment.run_dir(config.teacher.run)
    assert (teacher_dir / "metrics.csv").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(experiment, "fit", no_training)
    again = experiment.run(config, device="cpu", progress=False)
    pd.testing.assert_frame_equal(again.metrics, first.metrics)


def test_runs_csv_gathers_every_run_and_epoch(results):
    for method in ("baseline", "vid"):
        experiment.run(experiment.resolve("embedded", "digits", "untrained", method, 0, FAST), device="cpu", progress=False)
    runs = experiment.collect_runs("embedded")
    assert (results / "embedded" / "runs.csv").exists()
    required = {"dataset", "teacher", "method", "seed", "epoch", "phase", "test_acc", "train_loss", "seconds"}
    assert required <= set(runs.columns)
    assert sorted(runs.groupby(["method", "teacher"]).size().items()) == [(("baseline", "none"), 2), (("vid", "untrained"), 2)]


def test_the_grid_has_each_run_once_and_baselines_are_shared():
    configs = experiment.grid("embedded", {"seeds": [0, 1]})
    spec = experiment.load_profile("embedded")["grid"]
    distilling = len(spec["datasets"]) * len(spec["teachers"]) * (len(spec["methods"]) - 1)
    assert len(configs) == 2 * (distilling + len(spec["datasets"]))
    assert len({c.key for c in configs}) == len(configs)


def test_run_grid_trains_the_teacher_once_then_the_students_in_parallel(results):
    overrides = {**FAST, "seeds": [0], "grid": {"datasets": ["digits"], "teachers": ["trained", "noisy"], "methods": ["vid", "kd"]}}
    configs = experiment.grid("embedded", overrides)
    runs = experiment.run_grid(configs, jobs=2, device="cpu", progress=False)
    assert [r.config for r in runs] == configs and all(len(r.metrics) == 2 for r in runs)
    assert len(list((results / "embedded" / "runs").iterdir())) == len(configs) + 1  # + the teacher


def test_representations_are_saved_at_the_pid_epochs(results):
    config = experiment.resolve("embedded", "digits", "noisy", "rid", 0, {**FAST, "student_training.pid_epochs": [2], "methods.rid.rounds": 1})
    done = experiment.run(config, device="cpu", progress=False)
    student = experiment.load_representations(done, 2)
    teacher = experiment.teacher_representations(config.teacher, "digits", device="cpu")
    assert student[:2] == [None, None]  # only the profile's pid layers (the last) are kept
    assert student[2].shape[1] == 32 and [f.shape[1] for f in teacher] == [32, 64, 128]
    assert len(student[2]) == len(teacher[0]) == 540  # the digits test split
    clean = experiment.teacher_representations(replace(config.teacher, kind="trained", noise=None), "digits", device="cpu")
    assert not torch.equal(teacher[2], clean[2])  # the noisy teacher's features are corrupted
    with pytest.raises(ConfigError, match="not among the run's pid_epochs"):
        experiment.load_representations(done, 1)


def test_pid_layers_and_dtype_say_what_is_saved(results):
    overrides = {**FAST, "student_training.pid_epochs": [1], "pid.layers": [0, -1], "pid.dtype": "float16"}
    done = experiment.run(experiment.resolve("embedded", "digits", "trained", "kd", 0, overrides), device="cpu", progress=False)
    saved = experiment.load_representations(done, 1)
    assert saved[1] is None and [f.dtype for f in (saved[0], saved[2])] == [torch.float16] * 2
    with pytest.raises(ConfigError, match="saved no features of layer 2"):
        measures.measure_run(done, layers=(1,))
    with pytest.raises(ConfigError, match="unknown pid dtype 'bfloat16'"):
        experiment.resolve("embedded", "digits", "trained", "kd", 0, {"pid.dtype": "bfloat16"})


def test_the_noise_grid_varies_only_the_noisy_teachers_sigma():
    configs = experiment.noise_grid("embedded", {"seeds": [0], "noise_sweep.sigmas": [0.5, 2.0]})
    sigmas = sorted((c.method, c.teacher.noise.sigma) for c in configs if c.teacher)
    assert sigmas == [("rid", 0.5), ("rid", 2.0), ("vid", 0.5), ("vid", 2.0)]
    assert [c.method for c in configs if c.teacher is None] == ["baseline"]


def test_a_teacher_config_names_its_kind_and_how_it_is_made():
    noisy = experiment.teacher_config("embedded", "mnist1d", "noisy")
    assert noisy.noise.sigma == experiment.load_profile("embedded")["teachers"]["noisy"]["sigma"]
    with pytest.raises(ConfigError, match="unknown field sigmaa in teachers.noisy; valid fields: fraction, sigma, replace"):
        experiment.teacher_config("embedded", "mnist1d", "noisy", {"teachers.noisy.sigmaa": 1.0})
