"""The notebooks' set-up in one call, :func:`setup`, and their hygiene for ``make figures``:
papermill's timings (and random ids) are dropped, so a re-executed notebook differs from the
committed one only where its outputs do; execution counts and outputs stay (nbval needs both).

    python -m pidkd.notebooks notebooks/*.ipynb
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from . import data, experiment, reference
from .config import Config, Profile, profile_names
from .results import Result
from .storage import data_root, results_root

COLAB_CELL = '''\
# On Colab only: install pidkd from a clone under /content, else from $PIDKD_SOURCE (README, "Colab").
import importlib.util, os, pathlib, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("pidkd") is None:
    clones = [str(init.parents[1]) for init in pathlib.Path("/content").glob("*/pidkd/__init__.py")]
    source = ["-e", clones[0]] if clones else [os.environ.get("PIDKD_SOURCE", "")]
    if not source[-1] or subprocess.run([sys.executable, "-m", "pip", "install", "-q", *source]).returncode:
        raise SystemExit(f"pidkd could not be installed from {source[-1]!r}: clone its repository under "
                         "/content, or set PIDKD_SOURCE to a pip source of it (README, 'Colab'); then rerun")
    sys.path[:0] = clones[:1]  # an editable install is importable after a restart, the clone at once
    importlib.invalidate_caches()'''
"""The first code cell of every notebook (they run it before pidkd can be imported, so each
carries this text; a test keeps them equal to it)."""

TIMINGS = ("start_time", "end_time", "duration")
INJECTED = "injected-parameters"


@dataclass(frozen=True)
class Session:
    """What a notebook works with: the loaded profile, its results folder, and how to train.
    ``as_shipped``: the profile is a shipped one, unchanged, so its committed reference applies."""

    profile: Profile
    folder: Path
    device: str
    jobs: int
    as_shipped: bool = False

    def run(self, configs: Sequence[Config]) -> list[Result]:
        """Train (or read from the cache) ``configs`` in ``jobs`` processes on ``device``; their
        datasets are downloaded first where they can be."""
        for dataset in sorted({c.dataset for c in configs}):
            data.download(dataset, data_root())
        return experiment.run_grid(list(configs), jobs=self.jobs, device=self.device)

    @property
    def accuracy_floor(self) -> float:
        """One test example of the profile's first dataset, in accuracy points: the smallest change
        of an accuracy that means anything."""
        return 100 / len(experiment.test_set(self.profile.datasets[0]))

    def check(self, frame: pd.DataFrame, table: str, by: Sequence[str], value: str, floor: float) -> reference.Check:
        """Record the mean, seed spread and count of ``value`` per group of ``by`` as ``table`` in
        ``checked.csv``, and compare them with the profile's committed reference (docs/reproducibility.md)."""
        return self._check(reference.summarise(frame, table, by, value, floor))

    def check_claims(self, found: pd.DataFrame, table: str) -> reference.Check:
        """The same for the parts of :func:`pidkd.claims.claims`, verdicts included."""
        return self._check(reference.summarise_claims(found, table, {"points": 0.05, "bits": 0.001}))

    def _check(self, summary: pd.DataFrame) -> reference.Check:
        return reference.check(summary, self.profile.name if self.as_shipped else None, self.folder / "checked.csv")


def setup(
    profile: str | Path = "embedded",
    overrides: Mapping[str, Any] | None = None,
    *,
    seeds: Iterable[int] | None = None,
    device: str = "auto",
    jobs: int | None = None,
    results: str | Path | None = None,
) -> Session:
    """A notebook's set-up: profile ``profile`` with ``overrides`` (and ``seeds`` in place of its
    own), results under ``results`` (default: the repository's ``results/``, whatever folder the
    kernel started in, so papermill, nbval, Jupyter and Colab agree), ``jobs`` training processes
    (default: one per core), and tables shown to 4 decimals."""
    overrides = {**(overrides or {}), **({"seeds": list(seeds)} if seeds else {})}
    loaded = Profile.load(profile, overrides)
    if results is not None:  # the environment, so training processes see it too
        os.environ["PIDKD_RESULTS"] = str(Path(results).resolve())
    pd.set_option("display.precision", 4)
    shipped = str(profile) in profile_names() and not overrides
    return Session(loaded, results_root() / loaded.name, device, jobs or _cores(), shipped)


def _cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
