"""The notebooks' set-up in one call, :func:`setup`, and their hygiene for ``make figures``:
papermill's timings (and random ids) are dropped, so a re-executed notebook differs from the
committed one only where its outputs do; execution counts and outputs stay (nbval needs both).

    python -m pidkd.study.notebooks notebooks/*.ipynb
"""
from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..distill import data
from ..distill.settings import resolve_device
from ..errors import ConfigError
from . import effects, experiment, reference
from .folders import claim_results, data_root, results_root
from .identity import Config
from .profiles import Profile
from .results import Result
from .sources import profile_names

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

    def named(self, name: str, dataset: str) -> str:
        """A figure's or table's file name for ``dataset``: ``name`` alone when the profile has one dataset."""
        return name if len(self.profile.datasets) == 1 else f"{name}_{dataset}"

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
        """The same for the parts of :func:`pidkd.study.claims.claims`, verdicts included."""
        return self._check(reference.summarise_claims(found, table, {"points": 0.05, "bits": 0.001}))

    def check_effects(self, final: pd.DataFrame) -> str:
        """The study's paired effects (:mod:`pidkd.study.effects`; ``final``: the last epoch of each run, test
        accuracy in percent) against the profile's committed many-seed reference: raises
        StudyCheckFailed, naming the effect, its tolerance and the reference, when one fails; one line
        otherwise, the same on every machine."""
        path = effects.reference_file(self.profile.name)
        if not self.as_shipped or not path.is_file():
            return f"profile {self.profile.name} as run has no committed effects reference: nothing checked"
        known = effects.read_reference(path)
        checked = effects.check(effects.summary(effects.per_seed(final)), known, f"{path.name}")
        return (f"{len(checked)} effects, each within its tolerance of the {int(known['n'].min())}-seed reference "
                f"({path.name})")

    def _check(self, summary: pd.DataFrame) -> reference.Check:
        return reference.check(summary, self.profile.name if self.as_shipped else None, self.folder / "checked.csv")


def setup(
    profile: str | Path = "embedded",
    overrides: Mapping[str, Any] | str | None = None,
    *,
    seeds: int | Iterable[int] | str | None = None,
    device: str = "auto",
    jobs: int | None = None,
    results: str | Path | None = None,
) -> Session:
    """A notebook's set-up: profile ``profile`` with ``overrides`` (a mapping, or its YAML or JSON
    text, as ``papermill -p`` passes it) and ``seeds`` in place of its own (one seed or several;
    None keeps the profile's), results under ``results`` (default: the repository's ``results/``,
    whatever folder the kernel started in, so papermill, nbval, Jupyter and Colab agree), ``jobs``
    training processes (default: one per core) on ``device``, and tables shown to 4 decimals.
    Everything is checked before anything runs: a parameter that papermill injected but the
    notebook does not declare (a misspelt ``-p``), a bad override or seed, a device absent here."""
    unknown, declared = _undeclared_parameters()
    if unknown:
        raise ConfigError(f"unknown notebook parameter {', '.join(map(repr, unknown))}; this notebook takes "
                          f"{', '.join(declared)}")
    overrides = {**_parsed("overrides", overrides, dict), **({"seeds": _seeds(seeds)} if seeds is not None else {})}
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"jobs must be a whole number of processes of at least 1, or None for one per core; got {jobs!r}")
    resolve_device(device)
    loaded = Profile.load(profile, overrides)
    if results is not None:  # the environment, so training processes see it too
        os.environ["PIDKD_RESULTS"] = str(Path(results).resolve())
    folder = results_root() / loaded.name
    claim_results(folder, loaded.source)
    pd.set_option("display.precision", 4)
    shipped = str(profile) in profile_names() and not overrides
    return Session(loaded, folder, device, jobs or _cores(), shipped)


def _parsed(name: str, value: Any, kind: type) -> Any:
    """A parameter given as text (papermill ``-p``) read as YAML, which JSON is too; None as empty."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ConfigError(f"{name} is not valid YAML or JSON: {getattr(error, 'problem', error)}") from error
    if not isinstance(value, kind):
        raise ConfigError(f"{name} must be a {kind.__name__}, e.g. {name}='{{\"student_training.epochs\": 5}}'; "
                          f"got {value!r}")
    return value


def _seeds(seeds: int | Iterable[int] | str) -> list[int]:
    """``seeds`` as a list: one seed (0 included) or several, given as numbers or as YAML text."""
    if isinstance(seeds, str):
        seeds = _parsed("seeds", seeds, object)
    listed = [seeds] if isinstance(seeds, int) else list(seeds)
    if not listed or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in listed):
        raise ConfigError(f"seeds must be a seed or a list of seeds, whole numbers >= 0, or None for the profile's; "
                          f"got {seeds!r}")
    return listed


def _undeclared_parameters() -> tuple[list[str], list[str]]:
    """The names papermill injected (its ``# Parameters`` cell, run just after the notebook's cell
    tagged ``parameters``) that no earlier cell assigns, and those that the parameters cell does;
    empty outside a papermill-executed kernel (earlier cells count too, so that cells rerun by hand
    in between never make a declared name look unknown)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return [], []
    shell = get_ipython()
    cells = list(shell.user_ns.get("In", [])) if shell is not None else []
    injected = [i for i, cell in enumerate(cells) if cell.startswith("# Parameters\n")]
    if not injected or injected[-1] == 0:
        return [], []
    earlier = {name for cell in cells[:injected[-1]] for name in _assigned(cell)}
    return sorted(set(_assigned(cells[injected[-1]])) - earlier), _assigned(cells[injected[-1] - 1])


def _assigned(source: str) -> list[str]:
    """The names a cell assigns at its top level, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    targets = [t for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    return [t.id for t in targets if isinstance(t, ast.Name)]


def _cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def strip_timings(path: Path) -> None:
    """Rewrite the notebook at ``path`` without execution timestamps and durations."""
    import nbformat  # here: it takes a second to import, and every notebook's set-up imports this module

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
