"""The CLI where the user or the environment is at fault: each case one line on stderr, status 2
(130 for Ctrl-C), no traceback and no partial file left behind; and profiles given as paths."""
from __future__ import annotations

import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torchvision.datasets.cifar

from pidkd.errors import RunInterrupted
from pidkd.study import experiment
from pidkd.study.cli import main

TINY = ["--set", "seeds=[0]", "--set", "grid={datasets: [digits], teachers: [trained], methods: [baseline]}",
        "--set", "teacher_training.epochs=1", "--set", "student_training.epochs=1",
        "--set", "student_training.recipe.milestones=[]", "--set", "student_training.pid_epochs=[]"]


def _one_line(capsys, status: int, code: int = 2) -> str:
    """The single stderr line of a failed command with exit status ``code``."""
    err = capsys.readouterr().err.strip()
    assert status == code and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("args, message", [
    (["run", "--dataset", "digits", "--device", "cuda"], "device 'cuda': this torch"),
    (["run", "--dataset", "digits", "--device", "gpu0"], "unknown device 'gpu0'; valid devices: auto, cpu, cuda"),
    (["sweep", "--device", "cuda:3"], "device 'cuda:3'"),
    (["check-gpu", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "--dataset", "digits", "--seed", "-3"], "argument --seed: expected a whole number of at least 0, got '-3'"),
    (["teacher", "--dataset", "digits", "--seed", "-1"], "argument --seed: expected a whole number of at least 0"),
    (["sweep", "--jobs", "0"], "argument --jobs: expected a whole number of at least 1, got '0'"),
    (["sweep", "--jobs", "-1"], "argument --jobs: expected a whole number of at least 1, got '-1'"),
])
def test_a_bad_device_seed_or_job_count_is_refused_before_anything_starts(results, capsys, args, message):
    try:
        status = main(args)
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    assert message in capsys.readouterr().err and status == 2
    assert not (results / "embedded" / "runs").exists()


@pytest.mark.parametrize("value", ["abc", "0", "-2"])
def test_a_bad_thread_count_is_one_line(results, capsys, monkeypatch, value):
    monkeypatch.setenv("PIDKD_THREADS", value)
    err = _one_line(capsys, main(["run", "--dataset", "digits", *TINY]))
    assert f"PIDKD_THREADS must be a whole number of threads of at least 1, not {value!r}" in err


def test_a_results_path_that_is_a_file_is_one_line(tmp_path, capsys):
    taken = tmp_path / "results.txt"
    taken.write_text("not a folder")
    err = _one_line(capsys, main(["run", "--dataset", "digits", "--results", str(taken), *TINY]))
    assert f"the results folder {taken} is a file" in err


def test_an_unwritable_results_folder_is_one_line_and_leaves_nothing(results, capsys, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    err = _one_line(capsys, main(["run", "--dataset", "digits", *TINY]))
    assert "cannot use" in err and "Permission denied" in err and "--results" in err
    assert not results.exists()


def test_list_reads_a_folder_it_cannot_write(results, capsys, monkeypatch):
    assert main(["run", "--dataset", "digits", "--quiet", *TINY]) == 0

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system", "runs.csv.tmp")

    monkeypatch.setattr("pidkd.study.folders.write_atomic", read_only)
    monkeypatch.setattr("pidkd.study.results.write_atomic", read_only)
    capsys.readouterr()
    assert main(["list"]) == 0
    assert "digits" in capsys.readouterr().out and not (results / "embedded" / "runs.csv").exists()


def test_download_offline_says_where_to_put_the_archive(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    err = _one_line(capsys, main(["download", "cifar10", "--root", str(tmp_path / "data")]))
    assert "could not download cifar10" in err and "cifar-10-python.tar.gz" in err and "no network" in err


def test_slurm_where_there_is_none_is_one_line(results, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    err = _one_line(capsys, main(["sweep", "--launch", "slurm", *TINY]))
    assert "no Slurm here (sbatch is not on PATH)" in err


def test_a_sweep_piped_into_head_ends_quietly():
    done = subprocess.run(f"{sys.executable} -m pidkd sweep --profile embedded | head -n 1", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "" and len(done.stdout.splitlines()) == 1


def test_ctrl_c_says_how_to_resume(results, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise RunInterrupted("interrupted at epoch 3 of 80; rerun the same command to resume")

    monkeypatch.setattr(experiment, "fit", interrupted)
    err = _one_line(capsys, main(["run", "--dataset", "digits", *TINY]), code=130)
    assert err == "pidkd: interrupted at epoch 3 of 80; rerun the same command to resume"

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "run_grid", stopped)
    err = _one_line(capsys, main(["sweep", "--launch", "processes", *TINY]), code=130)
    assert "interrupted; rerun the same command to resume" in err


# --------------------------------------------------------------------------- profiles given as paths


def _profile(folder: Path, name: str = "mine.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("extends: embedded\nseeds: [0]\ngrid: {datasets: [digits], teachers: [trained], methods: [baseline]}\n"
                    "teacher_training: {epochs: 1}\nstudent_training: {epochs: 1, pid_epochs: [], recipe: {milestones: []}}\n")
    return path


def test_a_relative_profile_path_works_for_run_list_sweep_and_show(results, tmp_path, capsys, monkeypatch):
    _profile(tmp_path / "profiles")
    monkeypatch.chdir(tmp_path)
    relative = "profiles/mine.yaml"
    assert main(["run", "--profile", relative, "--dataset", "digits", "--quiet"]) == 0
    assert (results / "mine" / "runs").is_dir()
    capsys.readouterr()
    assert main(["list", "--profile", relative]) == 0 and "digits" in capsys.readouterr().out
    assert main(["sweep", "--profile", relative]) == 0 and capsys.readouterr().out.startswith("done")
    assert main(["show", "--profile", relative, "--dataset", "digits"]) == 0


def test_two_profiles_never_share_a_results_folder_silently(results, tmp_path, capsys):
    first, second = _profile(tmp_path / "a"), _profile(tmp_path / "b")
    assert main(["run", "--profile", str(first), "--dataset", "digits", "--quiet"]) == 0
    capsys.readouterr()
    err = _one_line(capsys, main(["run", "--profile", str(second), "--dataset", "digits", "--quiet"]))
    assert f"holds the results of profile {first.resolve()}, not of {second.resolve()}" in err
    shadow = _profile(tmp_path / "c", "embedded.yaml")
    err = _one_line(capsys, main(["run", "--profile", str(shadow), "--dataset", "digits"]))
    assert "has the name of the shipped profile 'embedded'" in err
