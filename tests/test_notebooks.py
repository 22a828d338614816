"""Notebook hygiene: timings go, outputs and execution counts stay."""
from __future__ import annotations

import nbformat

from pidkd.notebooks import strip_timings


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
