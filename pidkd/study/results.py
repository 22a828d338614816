"""Run folders -> frames: a finished run's :class:`Result`, ``runs.csv`` (one row per run and epoch,
led by the columns that say which run it is), and the representations saved at PID epochs."""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..distill.files import load_checkpoint, write_atomic
from ..distill.methods import METHODS
from ..errors import CheckpointError, ConfigError
from .folders import results_root
from .identity import Config, TeacherConfig

log = logging.getLogger(__name__)

METRICS = "metrics.csv"
"""Written last, atomically: a run folder without it holds an unfinished run."""

PARAMS = list(dict.fromkeys(name for method in METHODS.values() for name in method.Params.model_fields))
"""Every method's parameters (``weight``, ``temperature``, ``rounds``, ...), a column each; empty
where a run's method has no such parameter."""

IDENTITY = ["dataset", "model", "teacher", "method", "seed", "noise_sigma"]
"""Which run a row is, in words."""

RUN_COLUMNS = [*IDENTITY, *PARAMS, "key"]
"""The columns that say which run a row of ``runs.csv`` belongs to, before its metrics."""


@dataclass(frozen=True)
class Result:
    """A finished run: its config, its folder, and one metrics row per epoch."""

    config: Config
    directory: Path
    metrics: pd.DataFrame

    @property
    def final_accuracy(self) -> float:
        return float(self.metrics["test_acc"].iloc[-1])

    @property
    def diverged(self) -> str | None:
        """The loss term (or ``representation``) that became non-finite, stopping the run; None if it did not."""
        if "diverged" not in self.metrics:
            return None
        last = self.metrics["diverged"].iloc[-1]
        return last if isinstance(last, str) and last else None

    def describe(self) -> str:
        """The run in one line: dataset, teacher, method, seed, key, and where it diverged, if it did."""
        config = self.config
        where = (f", epoch {int(self.metrics['epoch'].iloc[-1])}, loss term {self.diverged}"
                 if self.diverged else "")
        return (f"dataset {config.dataset}, teacher {config.teacher_kind}, method {config.method}, seed {config.seed}, "
                f"key {config.key}{where}")


def read_metrics(directory: Path) -> pd.DataFrame:
    """A finished run's metrics.csv; a damaged one is a CheckpointError that says what to do."""
    try:
        metrics = pd.read_csv(directory / METRICS)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise CheckpointError(f"{directory / METRICS} cannot be read ({type(error).__name__}); delete "
                              f"{directory} to run it again") from error
    if metrics.empty or "test_acc" not in metrics:
        raise CheckpointError(f"{directory / METRICS} holds no epochs; delete {directory} to run it again")
    return metrics


def _identity(config: dict[str, Any], key: str) -> list[Any]:
    """RUN_COLUMNS of a run from its config as plain values (``Config.as_dict`` or config.json)."""
    teacher = config["teacher"] or {}
    noise = teacher.get("noise") or {}
    params = dict(config["params"])
    return [config["dataset"], config["model"], teacher.get("kind", "none"), config["method"], config["seed"],
            noise.get("sigma", math.nan), *(params.get(name, math.nan) for name in PARAMS), key]


def _frame(config: dict[str, Any], key: str, rows: pd.DataFrame) -> pd.DataFrame:
    identity = pd.DataFrame([_identity(config, key)] * len(rows), columns=RUN_COLUMNS)
    return pd.concat([identity, rows.reset_index(drop=True)], axis=1)


def label_rows(config: Config, rows: pd.DataFrame, teacher: TeacherConfig | None = None) -> pd.DataFrame:
    """``rows`` of one run (metrics, measures) with the run's RUN_COLUMNS in front; ``teacher``
    names the teacher its rows are about when the run has none of its own (a baseline measured
    against one)."""
    plain = config.as_dict()
    if teacher is not None:
        plain["teacher"] = teacher.as_dict()
    return _frame(plain, config.key, rows)


def runs_frame(results: list[Result]) -> pd.DataFrame:
    """One row per run and epoch of ``results``, labelled with RUN_COLUMNS."""
    frames = [label_rows(r.config, r.metrics) for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RUN_COLUMNS)


def collect_runs(profile: str, root: str | Path | None = None, write: bool = True) -> pd.DataFrame:
    """One row per finished run and epoch of a profile, written to ``results/<profile>/runs.csv``.
    Unfinished runs are left out; a damaged run folder is reported (a logged warning) and skipped."""
    base = results_root(root) / profile
    frames = []
    for directory in sorted((base / "runs").glob("*/")):
        if not (directory / METRICS).exists():
            log.info("%s has not finished", directory)
            continue
        try:
            config = json.loads((directory / "config.json").read_text())
            frames.append(_frame(config, directory.name, read_metrics(directory)))
        except (OSError, ValueError, KeyError, TypeError, CheckpointError) as error:
            log.warning("skipped damaged run folder %s (%s: %s); delete it to run it again",
                        directory, type(error).__name__, error)
    runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RUN_COLUMNS)
    if write and frames:
        write_atomic(base / "runs.csv", runs.to_csv(index=False))
    return runs


def final_epochs(runs: pd.DataFrame) -> pd.DataFrame:
    """The last epoch's row of every run."""
    return runs.sort_values("epoch").groupby("key", sort=False).tail(1)


def final_percent(runs: pd.DataFrame, accuracies: tuple[str, ...] = ("test_acc",)) -> pd.DataFrame:
    """The last epoch of every run with its ``accuracies`` in percent."""
    final = final_epochs(runs)
    return final.assign(**{accuracy: 100 * final[accuracy] for accuracy in accuracies})


def load_representations(result: Result, epoch: int) -> list[torch.Tensor | None]:
    """The student's per-layer test-set features saved after ``epoch`` (a PID epoch); None in
    place of the layers the run did not save."""
    path = result.directory / "representations" / f"epoch-{epoch:03d}.pt"
    if not path.exists():
        raise ConfigError(f"{path} does not exist: epoch {epoch} is not among the run's pid_epochs "
                          f"{result.config.pid_epochs}")
    return load_checkpoint(path)
