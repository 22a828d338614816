"""What a new user meets first: README's quick start, `make` with a profile file's path, the
citation and the licence."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import tomllib
import yaml

from pidkd.study.folders import CHECKOUT

README = (CHECKOUT / "README.md").read_text()


def _quick_start() -> list[str]:
    block = re.search(r"## Quick start\n\n```bash\n(.*?)```", README, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def test_the_quick_start_is_at_most_five_commands_that_need_no_activated_environment():
    commands = _quick_start()
    assert len(commands) <= 5 and commands[0] == "make env" and commands[-1] == "make lab"
    # a fresh shell has no .venv on its PATH: every command is make's or names .venv's interpreter
    assert all(c.startswith(("make ", ".venv/bin/python ")) for c in commands), commands


def test_the_quick_starts_tiny_run_runs_as_written(tmp_path):
    run = next(c for c in _quick_start() if c.startswith(".venv/bin/python"))
    argv = [sys.executable, *shlex.split(run)[1:], "--quiet", "--results", str(tmp_path)]
    done = subprocess.run(argv, cwd=CHECKOUT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "test_acc=" in done.stdout, done.stderr


def test_make_figures_takes_a_profile_files_relative_path():
    """papermill runs in notebooks/: the path reaches it absolute, and the results go under the file's name."""
    done = subprocess.run(["make", "-n", "figures", "PROFILE=tests/profiles/quick-tiny.yaml", "PYTHON=python"],
                          cwd=CHECKOUT, capture_output=True, text=True, timeout=60)
    assert f'-p profile "{CHECKOUT}/tests/profiles/quick-tiny.yaml"' in done.stdout
    assert "results/quick-tiny/notebooks" in done.stdout and "results//" not in done.stdout


def test_make_env_installs_jupyterlab_and_make_lab_opens_the_notebooks():
    extras = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("jupyterlab") for requirement in extras["lab"])
    done = subprocess.run(["make", "-n", "lab", "PYTHON=python"], cwd=CHECKOUT, capture_output=True, text=True, timeout=60)
    assert "-m jupyter lab notebooks" in done.stdout
    assert '.[dev,lab]' in (CHECKOUT / "Makefile").read_text()


def test_the_citation_cites_the_paper_and_the_licence_is_pyprojects():
    citation = yaml.safe_load((CHECKOUT / "CITATION.cff").read_text())
    paper = citation["preferred-citation"]
    assert paper["title"] == "Quantifying Knowledge Distillation Using Partial Information Decomposition"
    assert [a["family-names"] for a in paper["authors"]] == ["Dissanayake", "Hamman", "Halder", "Sucholutsky",
                                                             "Zhang", "Dutta"]
    licence = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]["license"]
    assert citation["license"] == licence == "MIT"
    assert (CHECKOUT / "LICENSE").read_text().startswith("MIT License")


def test_importing_the_notebooks_set_up_leaves_torchvision_and_sklearns_datasets_unloaded():
    """Every notebook kernel and training process imports pidkd; torchvision (with torch._dynamo)
    would add about 1.4 s to each and sklearn.datasets most of a second, for datasets only the
    paper profiles and `digits` read."""
    probe = "import sys, pidkd.notebooks, pidkd.study.experiment; print(sorted({'torchvision', 'sklearn.datasets'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=CHECKOUT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
