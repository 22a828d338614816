"""``python -m pidkd``: one run from the shell, listing runs, and one-line user errors."""
from __future__ import annotations

import shlex
import subprocess
import sys

from pidkd.__main__ import main
from pidkd.train import Speed


def test_run_then_list(results, capsys):
    args = ["run", "--dataset", "digits", "--seed", "1", "--quiet", "--device", "cpu", "--set", "student_training.epochs=1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert str(results / "embedded" / "runs") in printed and "test_acc=" in printed
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "digits" in listing and "cnn2d-student" in listing and "baseline" in listing


def test_an_unknown_name_is_one_line_on_stderr_and_a_nonzero_exit(results):
    done = subprocess.run(
        [sys.executable, "-m", "pidkd", "run", "--dataset", "digits", "--method", "distill"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "pidkd: error: unknown method 'distill'; valid names: baseline, kd, rid, ted, vid"
    )
    assert "Traceback" not in done.stderr


def test_a_malformed_override_is_a_usage_error(results, capsys):
    try:
        main(["run", "--dataset", "digits", "--set", "epochs"])
    except SystemExit as exit:
        assert exit.code == 2
    assert "expected section.key=value" in capsys.readouterr().err


def test_speed_flags_are_checked_and_never_change_the_run(results, capsys, monkeypatch):
    assert main(["run", "--dataset", "digits", "--workers", "-1"]) == 2
    assert "workers must be >= 0" in capsys.readouterr().err
    seen = []
    monkeypatch.setattr("pidkd.experiment.run", lambda config, **kwargs: seen.append((config, kwargs["speed"])) or 1 / 0)
    for flags in ([], ["--compile", "--workers", "8", "--no-channels-last", "--precision", "bf16"]):
        try:
            main(["run", "--dataset", "digits", *flags])
        except ZeroDivisionError:
            pass
    assert seen[0][0] == seen[1][0]  # the same config, so the same run key
    assert seen[1][1] == Speed(precision="bf16", channels_last=False, compile=True, workers=8) and seen[0][1] == Speed()


TINY_GRID = ["--set", "seeds=[0]", "--set", "grid={datasets: [digits], teachers: [trained], methods: [baseline, kd]}",
             "--set", "teacher_training.epochs=1", "--set", "student_training.epochs=1"]


def test_sweep_lists_each_run_as_a_command_with_its_status(results, capsys):
    assert main(["sweep", *TINY_GRID]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("pending ") for line in lines)
    assert "python -m pidkd teacher --profile embedded --dataset digits --set 'seeds=[0]'" in lines[0]  # first
    assert "python -m pidkd run --profile embedded --dataset digits --teacher trained --method kd --seed 0" in lines[2]
    command = shlex.split(lines[0].split("  ", 1)[1])[3:]  # what follows python -m pidkd
    assert main([*command, "--quiet", "--device", "cpu"]) == 0
    assert str(results / "embedded" / "runs" / lines[0].split()[1]) in capsys.readouterr().out
    assert main(["sweep", *TINY_GRID]) == 0
    assert capsys.readouterr().out.startswith("done ")


def test_sweep_launches_with_submitits_local_executor_and_gathers_results(results, capsys):
    assert main(["sweep", *TINY_GRID, "--launch", "submitit-local", "--device", "cpu", "--timeout-min", "10"]) == 0
    assert "2 runs finished" in capsys.readouterr().out  # the grid points; the teacher ran first, as a job of its own
    assert main(["sweep", *TINY_GRID]) == 0
    assert all(line.startswith("done ") for line in capsys.readouterr().out.splitlines())
    assert (results / "submitit").is_dir()
    assert main(["list"]) == 0
    assert "cnn2d-teacher" in capsys.readouterr().out
