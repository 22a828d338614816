"""The notebooks: one Colab cell and a two-line set-up each, results found from the package's
location, and papermill's timings stripped (outputs and execution counts stay)."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from pidkd.errors import ConfigError
from pidkd.study.colab import CELL
from pidkd.study.notebooks import setup, strip_timings


def test_timings_are_stripped_and_outputs_kept(tmp_path):
    cell = nbformat.v4.new_code_cell("1 + 1", execution_count=3)
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)]
    cell.metadata = {"execution": {"iopub.execute_input": "2026-11-28T00:00:00Z"}, "tags": ["parameters"],
                     "papermill": {"duration": 0.1, "start_time": "t0", "end_time": "t1", "status": "completed"}}
    injected = nbformat.v4.new_code_cell('profile = "embedded"')
    injected.metadata["tags"] = ["injected-parameters"]
    notebook = nbformat.v4.new_notebook(cells=[cell, injected])
    notebook.metadata["papermill"] = {"duration": 9.0, "start_time": "t0", "end_time": "t1", "parameters": {"profile": "embedded"}}
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    strip_timings(path)
    stripped = nbformat.read(path, as_version=4)
    assert stripped.metadata["papermill"] == {"parameters": {"profile": "embedded"}}
    assert stripped.cells[0].metadata == {"tags": ["parameters"], "papermill": {"status": "completed"}}
    assert stripped.cells[1].id == "injected-parameters"
    assert stripped.cells[0].execution_count == 3 and stripped.cells[0].outputs[0]["data"]["text/plain"] == "2"


NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9]*.ipynb"))


def test_every_notebook_opens_with_the_colab_cell_and_a_two_line_set_up():
    assert [nb.name[0] for nb in NOTEBOOKS] == list("1234567")
    for path in NOTEBOOKS:
        code = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        assert code[0].source == CELL and len(CELL.splitlines()) <= 3, path.name
        assert "parameters" in code[1].metadata.get("tags", []), path.name
        setup = code[3] if "injected-parameters" in code[2].metadata.get("tags", []) else code[2]
        assert setup.source.splitlines()[0] == "from pidkd import notebooks" and len(setup.source.splitlines()) == 2


def test_the_primer_needs_no_seeds_device_or_jobs():
    assert set(papermill.inspect_notebook(str(NOTEBOOKS[0]))) == {"profile"}


def test_every_parameter_carries_its_type():
    """``papermill --help-notebook`` says "Unknown type" for a parameter without a type hint."""
    for path in NOTEBOOKS:
        parameters = papermill.inspect_notebook(str(path))
        assert parameters and all(p["inferred_type_name"] != "None" for p in parameters.values()), path.name
    assert set(papermill.inspect_notebook(str(NOTEBOOKS[3]))) == {"profile", "overrides", "seeds", "device", "jobs"}


def test_setup_reads_seeds_and_overrides_as_papermill_passes_them(results):
    assert setup("smoke", seeds=0).profile.seeds == (0,)  # 0 is a seed, not "none given"
    assert setup("smoke", seeds="[1, 0]").profile.seeds == (1, 0)
    assert setup("smoke", '{"student_training.evaluate_every": 3}').profile.spec.student_training.evaluate_every == 3
    assert setup("smoke", "student_training.evaluate_every: 2").profile.spec.student_training.evaluate_every == 2


@pytest.mark.parametrize("arguments, message", [
    (dict(seeds=-1), "seeds must be a seed or a list of seeds"),
    (dict(overrides="[1, 2]"), "overrides must be a dict"),
    (dict(overrides="{a: [1"), "overrides is not valid YAML or JSON"),
    (dict(device="gpu0"), "unknown device 'gpu0'"),
    (dict(jobs=0), "jobs must be a whole number of processes of at least 1"),
])
def test_setup_refuses_a_bad_parameter_before_anything_runs(results, arguments, message):
    with pytest.raises(ConfigError, match=message):
        setup("smoke", **arguments)
    assert not (results / "smoke").exists()


def test_a_misspelt_notebook_parameter_stops_the_notebook_at_its_set_up(results, tmp_path):
    """papermill only warns about a name the notebook does not declare, then runs its defaults."""
    with pytest.raises(papermill.PapermillExecutionError, match="unknown notebook parameter 'seed'; this notebook "
                                                               "takes profile"):
        papermill.execute_notebook(str(NOTEBOOKS[0]), str(tmp_path / "out.ipynb"), parameters={"seed": 0},
                                   kernel_name="pidkd", cwd=str(NOTEBOOKS[0].parent), progress_bar=False)


def test_setup_finds_the_repositorys_results_whatever_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("PIDKD_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    session = setup("embedded")
    assert session.folder == Path(__file__).parents[1] / "results" / "embedded"
    assert session.as_shipped and not setup("embedded", {"seeds": [0]}).as_shipped
    mine = setup("embedded", results=tmp_path / "elsewhere")
    assert mine.folder == tmp_path / "elsewhere" / "embedded"


def test_the_colab_cell_does_nothing_outside_colab(monkeypatch):
    calls = []
    monkeypatch.setattr("subprocess.run", lambda *a, **k: calls.append(a))
    exec(CELL, {})
    assert calls == []


def test_on_colab_the_cell_installs_the_clone_and_says_what_failed(monkeypatch):
    from pidkd.study import colab

    monkeypatch.setitem(sys.modules, "google.colab", object())
    monkeypatch.setattr(colab, "_installed", lambda: False)
    calls = []
    monkeypatch.setattr(colab.subprocess, "run", lambda argv: calls.append(argv) or type("Done", (), {"returncode": 0}))
    colab.install()
    clone = str(Path(colab.__file__).resolve().parents[2])
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "-e", clone]]
    monkeypatch.setattr(colab.subprocess, "run", lambda argv: type("Failed", (), {"returncode": 1}))
    with pytest.raises(SystemExit, match="pip could not install pidkd from .*rerun this cell"):
        colab.install()
    monkeypatch.setattr(colab, "_installed", lambda: True)
    monkeypatch.setattr(colab.subprocess, "run", lambda argv: pytest.fail("installed twice"))
    colab.install()
