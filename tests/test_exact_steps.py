"""Exact end-to-end checks, independent of the machine: a few optimiser steps of every method (and
of the trained teacher) through the real experiment, data pipeline, teacher, loop and evaluation, in
float64, against the values committed in tests/exact_steps.json to 1e-9. Where
tests/test_exact_methods.py pins each loss, these catch a change anywhere between the data and the
loss. The values are written by tests/exact_steps.py (docs/reproducibility.md)."""
from __future__ import annotations

import json
import math
from typing import Any

import pytest

import exact_steps

TOL = {"rel_tol": 1e-9, "abs_tol": 1e-9}
COMMITTED = json.loads(exact_steps.VALUES.read_text())
REWRITE = f"if the change is meant to move these numbers, rewrite them with `{exact_steps.COMMAND}`"


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return exact_steps.fingerprint(tmp_path_factory.mktemp("results"))


def differences(committed: Any, now: Any, where: str = "") -> list[str]:
    """Where ``now`` differs from ``committed`` (numbers beyond TOL, anything else at all)."""
    if isinstance(committed, dict) and isinstance(now, dict):
        if committed.keys() != now.keys():
            return [f"{where}: keys {sorted(committed)} committed, {sorted(now)} now"]
        return [d for key in committed for d in differences(committed[key], now[key], f"{where}.{key}")]
    if isinstance(committed, list) and isinstance(now, list):
        if len(committed) != len(now):
            return [f"{where}: {len(committed)} items committed, {len(now)} now"]
        return [d for i, (c, n) in enumerate(zip(committed, now)) for d in differences(c, n, f"{where}[{i}]")]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (committed, now))
    if (math.isclose(committed, now, **TOL) if numbers else committed == now):
        return []
    return [f"{where}: {committed!r} committed, {now!r} now"]


def test_the_committed_values_are_of_these_runs() -> None:
    assert COMMITTED["overrides"] == exact_steps.OVERRIDES, f"the values were written for other runs: {REWRITE}"
    assert list(COMMITTED["runs"]) == list(exact_steps.configs()), f"other runs are checked now: {REWRITE}"


@pytest.mark.parametrize("run", list(exact_steps.configs()))
def test_a_few_steps_exactly(computed: dict, run: str) -> None:
    """Each epoch's loss terms, rate and accuracies, and the final network's and method's state."""
    found = differences(COMMITTED["runs"][run], computed["runs"][run], run)
    assert not found, "\n".join([*found[:10], REWRITE])


def test_the_teachers_features_exactly(computed: dict) -> None:
    found = differences(COMMITTED["teacher_features"], computed["teacher_features"], "teacher_features")
    assert not found, "\n".join([*found[:10], REWRITE])


def test_the_check_sees_a_change_beyond_its_tolerance() -> None:
    run = COMMITTED["runs"]["trained/rid"]
    moved = json.loads(json.dumps(run))
    moved["epochs"][-1]["train_loss"] *= 1 + 1e-8
    assert differences(run, moved) and not differences(run, json.loads(json.dumps(run)))
