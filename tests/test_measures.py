"""PID measures of runs: rows per (epoch, layer, control), cached, shared teachers."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from pidkd.errors import ConfigError
from pidkd.study import experiment, measures
from pidkd.study.profiles import Profile
from pidkd.study.spec import PIDSettings

TINY = {
    "teacher_training.epochs": 1,
    "student_training.epochs": 2,
    "student_training.pid_epochs": [1, 2],
    "student_training.recipe.milestones": [],
    "pid.layers": [0, -1],
    "methods.rid.rounds": 1,
    "pid.n_clusters": 5,  # digits' 540 test examples fill 5 x 5 x 10 cells; 10 x 10 x 10 would be refused as too few
}
SETTINGS = PIDSettings(n_clusters=5)


@pytest.fixture
def runs(results):
    profile = Profile.load("embedded", TINY)
    configs = [profile.config("digits", kind, method, 0) for kind in ("trained", "untrained") for method in ("baseline", "vid")]
    return experiment.run_grid(configs, device="cpu", progress=False)


def test_measure_runs_writes_pid_csv_for_the_distillation_runs(runs, results):
    table = measures.measure_runs(runs, Profile.load("embedded", TINY), results / "embedded", progress=False)
    assert (results / "embedded" / "pid.csv").exists()
    assert set(table["teacher"]) == {"trained", "untrained"} and set(table["method"]) == {"vid"}
    assert len(table) == 2 * 2 * 2 * 2  # runs x epochs x layers x (labels, shuffled labels)
    assert set(table["layer"]) == {1, 3} and (table["n"] == 540).all()
    real, control = table[~table["control"]], table[table["control"]]
    assert (real["mi_t"] > control["mi_t"].max()).all()  # teachers' features carry label information
    parts = real["red"] + real["uni_t"] + real["uni_s"] + real["syn"]
    assert (parts - real["mi"]).abs().max() < 1e-9


def test_measures_are_cached_per_run_and_settings(runs, monkeypatch):
    vid = [r for r in runs if r.config.method == "vid"][0]
    first = measures.measure_run(vid, SETTINGS)

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(measures.pid, "measure_codes", no_measuring)
    assert measures.measure_run(vid, SETTINGS).equals(first)
    with pytest.raises(AssertionError, match="measured again"):
        measures.measure_run(vid, PIDSettings(n_clusters=3))


def test_a_teachers_representations_are_shared_per_dataset(monkeypatch):
    # cifar10 and cifar100 have the same untrained wrn-40-2 teacher config but different test sets
    teacher = Profile.load("embedded").teacher("digits", "untrained", 0)
    calls = []

    def representations(config, dataset):
        calls.append(dataset)
        return [f"layer {i} of {dataset}" for i in range(3)]

    monkeypatch.setattr(experiment, "teacher_representations", representations)
    monkeypatch.setattr(measures, "_cache", lambda *args: Path("/nonexistent/pid.csv"))
    monkeypatch.setattr(measures, "measure_run", lambda done, settings, against, teacher: pd.DataFrame({"t": [teacher]}))
    runs = [SimpleNamespace(config=SimpleNamespace(teacher=teacher, dataset=d, key=str(i)), diverged=None)
            for i, d in enumerate(("cifar10", "cifar10", "cifar100"))]
    table = measures.measure_runs(runs, Profile.load("embedded", {"pid.layers": [0, -1]}), progress=False)
    assert calls == ["cifar10", "cifar100"]
    kept = [[f"layer 0 of {d}", None, f"layer 2 of {d}"] for d in ("cifar10", "cifar10", "cifar100")]
    assert list(table["t"]) == kept  # only the measured layers are held


def test_measuring_in_several_processes_gives_the_same_table_in_the_same_order(runs):
    profile = Profile.load("embedded", TINY)
    parallel = measures.measure_runs(runs, profile, baselines_against=("trained", "untrained"), progress=False, jobs=2)
    for cached in {p for r in runs for p in r.directory.glob("pid-*.csv")}:
        cached.unlink()
    serial = measures.measure_runs(runs, profile, baselines_against=("trained", "untrained"), progress=False)
    assert len(serial) == 4 * 2 * 2 * 2 and parallel.equals(serial)  # pairs x epochs x layers x controls


def test_a_baseline_is_measured_against_each_teacher_asked_for(runs, results):
    profile = Profile.load("embedded", TINY)
    table = measures.measure_runs(runs, profile, baselines_against=("trained", "untrained"), progress=False)
    baseline = table[table["method"] == "baseline"]
    assert sorted(set(baseline["teacher"])) == ["trained", "untrained"]
    assert len(baseline) == 2 * 2 * 2 * 2  # teachers x epochs x layers x (labels, shuffled labels), one baseline run
    trained = baseline[(baseline["teacher"] == "trained") & ~baseline["control"]]
    untrained = baseline[(baseline["teacher"] == "untrained") & ~baseline["control"]]
    assert (trained["mi_t"].values != untrained["mi_t"].values).any()  # different teachers, different I(Y;T)
    with pytest.raises(ConfigError, match="has no teacher: say which"):
        measures.measure_run(next(r for r in runs if r.config.method == "baseline"))


def test_the_last_pid_epoch_gets_bootstrap_intervals_when_asked(runs):
    vid = next(r for r in runs if r.config.method == "vid")
    table = measures.measure_run(vid, PIDSettings(layers=(-1,), bootstrap=40, n_clusters=5))
    real = table[~table["control"]].set_index("epoch")
    assert real.loc[2, "red_low"] <= real.loc[2, "red"] <= real.loc[2, "red_high"]
    assert real.loc[1, ["red_low", "red_high"]].isna().all() and table[table["control"]]["red_low"].isna().all()


def test_pid_skips_a_diverged_run_and_says_so(runs, caplog):
    """A diverged run saved no representations past its divergence: it is left out, by name."""
    profile = Profile.load("embedded", TINY)
    vid = [r for r in runs if r.config.method == "vid"]
    diverged = dataclasses.replace(vid[0], metrics=vid[0].metrics.assign(diverged=[None, "distill_loss"]))
    table = measures.measure_runs([diverged, vid[1]], profile, progress=False)
    assert set(table["key"]) == {vid[1].config.key}
    assert "PID skips a diverged run: dataset digits" in caplog.text and f"key {vid[0].config.key}, epoch 2, loss term " \
        "distill_loss" in caplog.text
