"""Notebook hygiene for ``make figures``: drop the timings (and random ids) that papermill and nbclient record,
so a re-executed notebook differs from the committed one only where its outputs do. Execution
counts and outputs stay (nbval needs both).

    python -m pidkd.notebooks notebooks/*.ipynb
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

TIMINGS = ("start_time", "end_time", "duration")
INJECTED = "injected-parameters"


def strip_timings(path: Path) -> None:
    """Rewrite the notebook at ``path`` without execution timestamps and durations."""
    notebook = nbformat.read(path, as_version=4)
    for metadata in [notebook.metadata, *(cell.metadata for cell in notebook.cells)]:
        metadata.pop("execution", None)
        for key in TIMINGS:
            metadata.get("papermill", {}).pop(key, None)
    for cell in notebook.cells:
        if INJECTED in cell.metadata.get("tags", []):
            cell.id = INJECTED  # papermill gives the cell it injects a random id on every run
    nbformat.write(notebook, path)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        strip_timings(Path(name))
