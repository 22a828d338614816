"""The selection stage is a profile with a sweep: its named variations are exactly the runs of the
committed record, and each resolves to the run it was (the equivalence of every fit argument with
the stage's earlier driver was checked when it was converted; these keep the profile from drifting)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

SELECTION = Path(__file__).resolve().parents[1] / "docs" / "selection"


def _script():
    spec = importlib.util.spec_from_file_location("embedded_selection", SELECTION / "embedded_selection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_profile_names_every_run_of_the_record_in_its_order():
    script = _script()
    runs = script._runs(script.Profile.load(script.PROFILE))
    record = pd.read_csv(script.TABLE)
    assert {(s, m, seed): config.epochs for s, m, seed, config in runs} == {
        (s, m, seed): epochs for s, m, seed, epochs in record[["setting", "method", "seed", "epochs"]].itertuples(index=False)}
    assert len(runs) == len(record)
    assert list(dict.fromkeys(s for s, *_ in runs)) == list(dict.fromkeys(record["setting"]))  # settings in the order tried


def test_a_candidate_resolves_to_the_run_it_was():
    script = _script()
    profile = script.Profile.load(script.PROFILE)
    choice = profile.spec.choices["n100-e80-lr.05-decay rid@3-filter.2"]
    ((_, config), *_) = profile.resolve(script.grids.variation(profile, choice, choice.set))
    assert (config.epochs, config.recipe.lr, config.recipe.milestones, config.recipe.filter_lr) == (80, 0.05, (40, 53), 0.2)
    assert (config.params.weight, config.params.head, config.params.round_length) == (3.0, "pooled", "balanced")
    teacher = config.teacher.training
    assert (teacher.seed, teacher.epochs, teacher.recipe.optimizer, teacher.samples_per_class) == (0, 60, "adam", 100)


def test_the_record_is_rebuilt_from_finished_runs_and_refused_before(monkeypatch):
    script = _script()
    profile = script.Profile.load(script.PROFILE)
    monkeypatch.setattr(script.experiment, "is_finished", lambda config: config.method != "ted")
    try:
        script.record(profile)
        raise AssertionError("an unfinished run was not refused")
    except script.ConfigError as error:
        assert "have not finished" in str(error) and "--choices" in str(error)

    def finished(config):
        epochs = range(1, config.epochs + 1)
        curve = [0.9 if e % config.evaluate_every == 0 or e == config.epochs else None for e in epochs]
        return type("Run", (), {"metrics": pd.DataFrame({"epoch": list(epochs), "val_acc": curve, "train_loss": 0.5, "seconds": 0.1})})

    monkeypatch.setattr(script.experiment, "is_finished", lambda config: True)
    monkeypatch.setattr(script.experiment, "run", finished)
    table, curves = script.record(profile)
    assert len(table) == len(pd.read_csv(script.TABLE)) and set(table["val_acc"]) == {90.0}
    teacher = table[(table["setting"] == "n100-e80-lr.05-decay") & (table["method"] == "teacher")].iloc[0]
    assert (teacher["epochs"], teacher["seconds"]) == (60, 6.0)
    assert script.summary(table)["plateau"].all() and len(curves) > len(table)
