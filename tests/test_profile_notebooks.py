"""Every notebook runs to its end under each paper profile, shrunk in size only (``tests/profiles``),
on the CPU, on stand-in files written in the real formats (CIFAR-10, CIFAR-100, CUB, ImageNet
weights): the GPU user's path, which the committed embedded outputs do not exercise."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import papermill
import pytest
from formats import write_stand_ins

from pidkd.study.folders import CHECKOUT
from pidkd.study.profiles import Profile

NOTEBOOKS = sorted((CHECKOUT / "notebooks").glob("[0-9]*.ipynb"))
PROFILES = CHECKOUT / "tests" / "profiles"


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stand-ins")
    write_stand_ins(root)
    return root


def _outputs(notebook: Path) -> str:
    """Every text a notebook's cells printed or displayed."""
    cells = json.loads(notebook.read_text())["cells"]
    texts = [o.get("text", "") or o.get("data", {}).get("text/plain", "") for c in cells for o in c.get("outputs", [])]
    return "\n".join("".join(t) for t in texts)


@pytest.mark.parametrize("name", ["quick-tiny", "paper-prototype-tiny", "paper-tiny"])
def test_every_notebook_runs_to_its_end_under_a_shrunk_paper_profile(name, stand_ins, tmp_path, monkeypatch):
    monkeypatch.setenv("PIDKD_DATA", str(stand_ins / "data"))
    monkeypatch.setenv("TORCH_HOME", str(stand_ins / "torch"))
    monkeypatch.setenv("PIDKD_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    profile = PROFILES / f"{name}.yaml"
    for notebook in NOTEBOOKS:
        parameters = {"profile": str(profile)} if notebook.name < "3" else {"profile": str(profile), "jobs": 1}
        papermill.execute_notebook(notebook, tmp_path / notebook.name, parameters=parameters,  # tiny runs: one
                                   kernel_name="pidkd", cwd=str(notebook.parent), progress_bar=False)  # process
    folder = tmp_path / "results" / name
    tables = {p.stem for p in (folder / "tables").glob("*.csv")}
    assert {"teacher_accuracy", "final_accuracy", "pid_last_epoch", "claims", "paper_comparison"} <= tables
    assert "no weight sweep: its grid uses the weights it sets" in _outputs(tmp_path / "4_distillation.ipynb")
    assert "has no doubling section or no validation split" in _outputs(tmp_path / "4_distillation.ipynb")
    assert "has no choices section: no map" in _outputs(tmp_path / "7_claims.ipynb")
    claims = pd.read_csv(folder / "tables" / "claims.csv")
    assert set(claims["claim"]) == set("abcdef") and set(claims["dataset"]) == set(Profile.load(profile).datasets)
