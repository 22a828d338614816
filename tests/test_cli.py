"""``python -m pidkd``: one run from the shell, a run's resolved config, listing runs, sweeps,
and one-line user errors that leave nothing behind."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pidkd.distill.settings import Speed
from pidkd.study.cli import main
from pidkd.study.profiles import Profile


def test_run_then_list(results, capsys):
    args = ["run", "--dataset", "digits", "--seed", "1", "--quiet", "--device", "cpu", "--set", "student_training.epochs=1",
            "--set", "student_training.recipe.milestones=[]", "--set", "student_training.pid_epochs=[]"]
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


def test_speed_flags_are_checked_and_only_the_precision_changes_the_run(results, capsys, monkeypatch):
    """How a run is computed is not part of its key, but the precision it trains in is: an fp16 run
    is never handed to an fp32 call as if it were one."""
    assert main(["run", "--dataset", "digits", "--workers", "-1"]) == 2
    assert "speed options: workers: Input should be greater than or equal to 0 (got -1)" in capsys.readouterr().err
    seen = []
    monkeypatch.setattr("pidkd.study.experiment.run", lambda config, **kwargs: seen.append((config, kwargs["speed"])) or 1 / 0)
    for flags in ([], ["--compile", "--workers", "8", "--no-channels-last"], ["--precision", "bf16"]):
        try:
            main(["run", "--dataset", "digits", "--method", "kd", *flags])
        except ZeroDivisionError:
            pass
    assert seen[0][0] == seen[1][0] and seen[0][0].precision == "fp32"  # the same config, so the same run key
    assert seen[2][0].precision == seen[2][0].teacher.training.precision == "bf16" and seen[2][0].key != seen[0][0].key
    assert seen[1][1] == Speed(channels_last=False, compile=True, workers=8) and seen[0][1] == Speed()


TINY_GRID = ["--set", "seeds=[0]", "--set", "grid={datasets: [digits], teachers: [trained], methods: [baseline, kd]}",
             "--set", "teacher_training.epochs=1", "--set", "student_training.epochs=1",
            "--set", "student_training.recipe.milestones=[]", "--set", "student_training.pid_epochs=[]"]


def test_sweep_lists_each_run_as_a_command_with_its_status(results, capsys):
    assert main(["sweep", *TINY_GRID]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("pending ") for line in lines)
    assert "python -m pidkd teacher --profile embedded --dataset digits --seed 0 --set 'seeds=[0]'" in lines[0]  # first
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


def _pidkd(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pidkd", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("sets, message", [
    (["methods.vid.weight=abc"], "profile 'embedded': methods.vid.weight: Input should be a valid number, unable to "
                                 "parse string as a number (got 'abc')"),
    (["student_training.epochs=-3"], "profile 'embedded': student_training.epochs: Input should be greater than 0 (got -3)"),
    (["student_training.epoch=3"], "profile 'embedded': student_training: unknown key 'epoch'; valid keys: epochs, "
                                   "recipe, distillation, method_recipes, pid_epochs, evaluate_every"),
    (["student_training.recipe.lr=.nan"], "profile 'embedded': student_training.recipe.lr: Input should be a finite "
                                          "number (got nan)"),
])
def test_a_bad_override_is_one_line_and_leaves_no_run_folder(results, sets, message):
    args = ["run", "--dataset", "mnist1d", "--method", "vid", "--quiet"]
    done = _pidkd(*args, *(f"--set={s}" for s in sets))
    assert (done.returncode, done.stderr) == (2, f"pidkd: error: {message}\n")
    assert not results.exists()


def test_a_malformed_profile_file_is_one_line(results, tmp_path):
    broken = tmp_path / "mine.yaml"
    broken.write_text("extends: embedded\nseeds: [0, 1\n")
    done = _pidkd("run", "--profile", str(broken), "--dataset", "mnist1d")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == f"pidkd: error: {broken} is not valid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'\n"
    assert not results.exists()


def test_show_prints_the_runs_config_json_and_key(results, capsys):
    assert main(["show", "--dataset", "mnist1d", "--teacher", "untrained", "--method", "rid", "--seed", "3",
                 "--set", "methods.rid.weight=2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    config = Profile.load("embedded", {"methods.rid.weight": 2}).config("mnist1d", "untrained", "rid", 3)
    assert shown == {"key": config.key, "config": config.as_dict()}
    assert shown["config"]["params"] == [["ce_weight", 1.0], ["filter_fraction", 0.25], ["fixed_side_bn", "train"],
                                         ["head", "flat"], ["init", "kaiming"], ["round_length", "floor"],
                                         ["rounds", 10], ["variance_penalty", "log"], ["variance_start", "a=5"],
                                         ["weight", 2.0]]
    assert not results.exists()  # showing trains nothing


def test_list_reports_a_damaged_run_folder_and_goes_on(results, capsys, caplog):
    args = ["run", "--dataset", "digits", "--quiet", "--device", "cpu", "--set", "student_training.epochs=1",
            "--set", "student_training.recipe.milestones=[]", "--set", "student_training.pid_epochs=[]"]
    assert main(args) == 0 and main([*args, "--seed", "1"]) == 0
    capsys.readouterr()
    folders = sorted((results / "embedded" / "runs").iterdir())
    (folders[0] / "metrics.csv").write_text("")  # emptied, as a full disk might leave it
    unfinished = folders[0].with_name("0123456789ab")
    unfinished.mkdir()  # a run that never finished: not listed, not an error
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert folders[1].name in listing and folders[0].name not in listing
    assert f"skipped damaged run folder {folders[0]}" in caplog.text and "delete it to run it again" in caplog.text


SELECTION = str(Path(__file__).resolve().parents[1] / "docs" / "selection" / "embedded_selection.yaml")


@pytest.mark.parametrize("grid", ["--weights", "--noise", "--choices", "--doubling", SELECTION])
def test_every_listed_command_of_a_sweep_trains_the_listed_run(grid, results, capsys):
    """The selection profile's choices vary the teacher too, so its teacher lines carry their overrides."""
    overrides = ["--set", "weight_sweep={weights: {vid: [1, 30]}}"]
    assert main(["sweep", "--choices", "--profile", grid] if grid == SELECTION else ["sweep", grid, *overrides]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line in lines:
        key, command = line.split()[1], shlex.split(line.split("  ", 1)[1])
        pairs = list(zip(command[4::2], command[5::2]))  # the flags after "python -m pidkd run|teacher"
        args = dict(pairs)
        sets = dict(value.split("=", 1) for flag, value in pairs if flag == "--set")
        profile = Profile.load(args["--profile"], {k: json.loads(v) for k, v in sets.items()})
        if command[3] == "teacher":
            assert profile.teacher_training(args["--dataset"], int(args["--seed"])).key == key
        else:
            assert profile.config(args["--dataset"], args["--teacher"], args["--method"], int(args["--seed"])).key == key
    assert len(lines) > 10
