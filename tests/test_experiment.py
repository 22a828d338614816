"""Configs -> runs: cached results, no folder left by a run that fails to start, grids, and the
representations saved for PID measures."""
from __future__ import annotations

import dataclasses
import os
import signal
import time

import pandas as pd
import pytest
import torch

from pidkd.errors import ConfigError, RunInterrupted
from pidkd.study import experiment, measures
from pidkd.study.profiles import Profile
from pidkd.study.results import collect_runs, load_representations
from pidkd.study.spec import PIDSettings

FAST = {"teacher_training.epochs": 1, "student_training.epochs": 2, "student_training.recipe.milestones": [],
        "student_training.pid_epochs": []}


def _config(teacher, method, seed=0, **overrides):
    return Profile.load("embedded", {**FAST, **overrides}).config("digits", teacher, method, seed)


def test_a_finished_run_is_returned_from_the_cache(results, monkeypatch):
    config = _config("trained", "kd")
    first = experiment.run(config, device="cpu", progress=False)
    assert first.directory == results / "embedded" / "runs" / config.key
    assert len(first.metrics) == 2 and (first.directory / "config.json").exists()
    assert (experiment.run_dir(config.teacher.training) / "metrics.csv").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(experiment, "fit", no_training)
    again = experiment.run(config, device="cpu", progress=False)
    pd.testing.assert_frame_equal(again.metrics, first.metrics)


def test_each_loss_term_is_logged_per_epoch(results):
    vid = experiment.run(_config("trained", "vid"), device="cpu", progress=False).metrics
    assert (vid["ce_loss"] + vid["distill_loss"] - vid["train_loss"]).abs().max() < 1e-5
    rid = experiment.run(_config("trained", "rid", **{"methods.rid.rounds": 1}), device="cpu", progress=False).metrics
    assert list(rid["phase"]) == ["filter", "student"]
    assert rid["filter_ce_loss"].notna().tolist() == [True, False]
    student = rid.iloc[1]
    assert student["ce_loss"] + student["variance_loss"] + student["distill_loss"] == pytest.approx(student["train_loss"], rel=1e-5)


def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(results, monkeypatch):
    config = _config("untrained", "vid")

    def interrupted(*args, **kwargs):
        raise RunInterrupted("interrupted at epoch 1 of 2; rerun the same command to resume")

    monkeypatch.setattr(experiment, "fit", interrupted)
    with pytest.raises(RunInterrupted):
        experiment.run(config, device="cpu", progress=False)
    assert not experiment.run_dir(config).exists()


def test_runs_csv_gathers_every_run_and_epoch(results):
    for method in ("baseline", "vid"):
        experiment.run(_config("untrained", method), device="cpu", progress=False)
    runs = collect_runs("embedded")
    assert (results / "embedded" / "runs.csv").exists()
    required = {"dataset", "teacher", "method", "seed", "epoch", "phase", "test_acc", "train_loss", "seconds"}
    assert required <= set(runs.columns)
    assert sorted(runs.groupby(["method", "teacher"]).size().items()) == [(("baseline", "none"), 2), (("vid", "untrained"), 2)]


def test_run_grid_trains_the_teacher_once_then_the_students_in_parallel(results):
    overrides = {**FAST, "seeds": [0], "grid": {"datasets": ["digits"], "teachers": ["trained", "noisy"], "methods": ["vid", "kd"]}}
    configs = Profile.load("embedded", overrides).grid()
    done = experiment.run_grid(configs, jobs=2, device="cpu", progress=False)
    assert [r.config for r in done] == configs and all(len(r.metrics) == 2 for r in done)
    assert len(list((results / "embedded" / "runs").iterdir())) == len(configs) + 1  # + the teacher


def test_representations_are_saved_at_the_pid_epochs(results):
    config = _config("noisy", "rid", **{"student_training.pid_epochs": [2], "methods.rid.rounds": 1})
    done = experiment.run(config, device="cpu", progress=False)
    student = load_representations(done, 2)
    teacher = experiment.teacher_representations(config.teacher, "digits", device="cpu")
    assert student[:2] == [None, None]  # only the profile's pid layers (the last) are kept
    assert student[2].shape[1] == 32 and [f.shape[1] for f in teacher] == [32, 64, 128]
    assert len(student[2]) == len(teacher[0]) == 540  # the digits test split
    clean = experiment.teacher_representations(dataclasses.replace(config.teacher, kind="trained", noise=None), "digits", device="cpu")
    assert not torch.equal(teacher[2], clean[2])  # the noisy teacher's features are corrupted
    with pytest.raises(ConfigError, match="not among the run's pid_epochs"):
        load_representations(done, 1)


def test_a_representation_that_float16_cannot_hold_stops_the_run_as_diverged(results, monkeypatch, caplog):
    """A student whose features blow up past float16's range would save infinities for PID to choke
    on: the run stops at that epoch, recorded and named, and stays a result."""
    config = _config("trained", "kd", **{"student_training.pid_epochs": [1, 2], "pid.dtype": "float16"})
    real = experiment.representations

    def blown_up(*args, **kwargs):
        return [None if f is None else f * 1e6 for f in real(*args, **kwargs)]

    monkeypatch.setattr(experiment, "representations", blown_up)
    done = experiment.run(config, device="cpu", progress=False)
    assert done.diverged == "representation" and len(done.metrics) == 1
    assert f"run diverged: dataset digits, teacher trained, method kd, seed 0, key {done.config.key}, epoch 1, " \
           "loss term representation" in caplog.text
    assert experiment.run(config, device="cpu", progress=False).diverged == "representation"  # a result, kept


def test_pid_layers_and_dtype_say_what_is_saved(results):
    overrides = {"student_training.pid_epochs": [1], "pid.layers": [0, -1], "pid.dtype": "float16"}
    done = experiment.run(_config("trained", "kd", **overrides), device="cpu", progress=False)
    saved = load_representations(done, 1)
    assert saved[1] is None and [f.dtype for f in (saved[0], saved[2])] == [torch.float16] * 2
    with pytest.raises(ConfigError, match="saved no features of layer 2"):
        measures.measure_run(done, PIDSettings(layers=(1,)))


def test_the_pool_of_processes_is_kept_while_the_environment_is_and_dropped_after_a_failure(monkeypatch):
    """A kept worker must not hold a stale environment (it reads $PIDKD_RESULTS once), and a grid
    that failed or was interrupted must not leave queued runs in a pool that is used again."""
    with experiment.processes(2) as first:
        assert first.submit(os.getenv, "PIDKD_RESULTS").result() == os.getenv("PIDKD_RESULTS")
    with experiment.processes(2) as again:
        assert again is first
    monkeypatch.setenv("PIDKD_RESULTS", "elsewhere")
    with experiment.processes(2) as moved:
        assert moved is not first and moved.submit(os.getenv, "PIDKD_RESULTS").result() == "elsewhere"
    with pytest.raises(KeyboardInterrupt), experiment.processes(2):
        raise KeyboardInterrupt
    with experiment.processes(2) as fresh:
        assert fresh is not moved


@pytest.fixture
def terminal_interrupts(monkeypatch):
    """SIGINT handled as in a terminal, so that spawned workers start with Python's handler (a
    shell's background job, like CI's, would hand them an ignored SIGINT and hide the bug)."""
    monkeypatch.setattr(experiment, "_kept", None)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_idle_training_process_ignores_the_interrupt_a_kernels_shutdown_sends_and_a_busy_one_stops(
        terminal_interrupts):
    with experiment.processes(1) as pool:
        pid = pool.submit(os.getpid).result()
        os.kill(pid, signal.SIGINT)  # what a Jupyter kernel's shutdown sends its process group
        time.sleep(0.5)
        assert pool.submit(os.getpid).result() == pid
    with pytest.raises(KeyboardInterrupt), experiment.processes(1) as pool:
        sleeping = pool.submit(time.sleep, 30)
        time.sleep(1)
        os.kill(pid, signal.SIGINT)  # Ctrl-C in a terminal: a run stops (and keeps its last epoch)
        sleeping.result(timeout=10)
