"""PID measures of runs: the teacher's and the student's test-set representations at the PID
epochs, decomposed about the label (docs/method.md); one row per (run, epoch, layer, control) of
``results/<profile>/pid.csv``. Each run's rows are cached in its folder."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from .. import pid
from ..distill import data
from ..distill.files import write_atomic
from ..distill.loop import progress_bar
from ..errors import ConfigError
from . import experiment
from .identity import Config, TeacherConfig
from .profiles import Profile
from .results import Result, label_rows, load_representations
from .spec import PIDSettings

log = logging.getLogger(__name__)


def measure_run(result: Result, settings: PIDSettings = PIDSettings(), against: TeacherConfig | None = None,
                teacher: list[torch.Tensor | None] | None = None, seed: int = 0) -> pd.DataFrame:
    """PID between a teacher's and the run's student representations at every PID epoch, for the
    settings' layers, with the labels and with shuffled labels (``control``: the plug-in
    estimator's bias at this sample size). ``against`` is the teacher: by default the one the run
    distilled from; a baseline, which has none, is measured against any (the authors measured the
    baseline against each teacher). ``teacher``: its test-set features, when already computed."""
    config = result.config
    against = against or config.teacher
    if against is None:
        raise ConfigError(f"run {config.key} ({config.method}) has no teacher: say which to measure it against")
    cache = _cache(result, settings, against, seed)
    if cache.exists():
        return pd.read_csv(cache, dtype={"key": str})  # keys are hex: keep leading zeros
    teacher = teacher or experiment.teacher_representations(against, config.dataset)
    labels = data.targets(experiment.test_set(config.dataset))
    rows = []
    for layer in settings.layers:
        index = layer % len(teacher)
        codes_t = pid.discretize(teacher[index], settings.n_clusters, settings.n_components, seed)
        for epoch in config.pid_epochs:
            student = load_representations(result, epoch)[index]
            if student is None:
                raise ConfigError(f"run {config.key} saved no features of layer {index + 1}: its pid layers are "
                                  f"{list(config.pid_layers)}; measure those, or rerun it with that layer in pid.layers")
            codes_s = pid.discretize(student, settings.n_clusters, settings.n_components, seed)
            for control in (False, True):
                bootstrap = settings.bootstrap if epoch == config.pid_epochs[-1] and not control else 0
                m = pid.measure_codes(codes_t, codes_s, labels, seed, control=control, bootstrap=bootstrap, warn=False)
                rows.append({"epoch": epoch, "layer": index + 1, "control": control, **m.as_dict()})
    frame = label_rows(config, pd.DataFrame(rows), teacher=against)
    write_atomic(cache, frame.to_csv(index=False))
    return frame


def _cache(result: Result, settings: PIDSettings, against: TeacherConfig, seed: int) -> Path:
    """Where ``measure_run`` keeps a run's PID against ``against`` with these settings."""
    fields = [f.name for f in dataclasses.fields(pid.Measurement)]
    measured = dict(settings.model_dump(include={"layers", "n_clusters", "n_components", "bootstrap"}), seed=seed,
                    fields=fields, teacher=against.as_dict())
    return result.directory / f"pid-{hashlib.sha256(json.dumps(measured).encode()).hexdigest()[:8]}.csv"


def _teachers(config: Config, profile: Profile, kinds: Sequence[str]) -> list[TeacherConfig]:
    """The teachers of each kind that the students of ``config``'s dataset and seed distil from,
    trained in the run's precision."""
    seed = profile.teacher_seed(config.dataset, config.seed)
    teachers = [profile.teacher(config.dataset, kind, seed) for kind in kinds]
    return [t if t.training is None else dataclasses.replace(t, training=t.training.in_precision(config.precision))
            for t in teachers]


def _measure_against(against: TeacherConfig, results: list[Result], settings: PIDSettings) -> dict[str, pd.DataFrame]:
    """``measure_run`` of ``results`` (runs of one dataset) against one teacher, by run key; the
    teacher's features are computed once, if any run needs them, and only its measured layers kept
    (a CUB teacher's four take about 8 GB)."""
    teacher = None
    if any(not _cache(r, settings, against, 0).exists() for r in results):
        every = experiment.teacher_representations(against, results[0].config.dataset)
        measured = {layer % len(every) for layer in settings.layers}
        teacher = [f if i in measured else None for i, f in enumerate(every)]
    return {r.config.key: measure_run(r, settings, against, teacher=teacher) for r in results}


def measure_runs(results: list[Result], profile: Profile, folder: Path | None = None, *,
                 baselines_against: Sequence[str] = (), progress: bool = True, jobs: int = 1) -> pd.DataFrame:
    """``measure_run`` with the profile's PID settings over ``results``: each distillation run
    against its teacher, each baseline against the teacher of each kind in ``baselines_against``,
    one teacher's runs at a time in each of ``jobs`` processes (the numbers do not depend on
    ``jobs``); written to ``folder/pid.csv`` when given. A diverged run has no representations to
    measure: it is skipped, with a logged line naming it."""
    settings = profile.pid
    results = list({r.config.key: r for r in results}.values())  # a baseline recurs under every teacher kind
    for result in results:
        if result.diverged:
            log.warning("PID skips a diverged run: %s", result.describe())
    results = [r for r in results if not r.diverged]
    pairs = [(r, t) for r in results
             for t in ([r.config.teacher] if r.config.teacher else _teachers(r.config, profile, baselines_against))]
    # an untrained teacher's config names no dataset, so the dataset is part of a teacher's key
    by_teacher: dict[tuple[str, TeacherConfig], list[Result]] = {}
    for result, against in pairs:
        by_teacher.setdefault((result.config.dataset, against), []).append(result)
    work = [(against, runs, settings) for (_, against), runs in by_teacher.items()]
    if jobs > 1 and len(work) > 1:
        with experiment.processes(jobs) as pool:
            measured = list(progress_bar(pool.map(_measure_against, *zip(*work)), progress, total=len(work), desc="PID"))
    else:
        measured = [_measure_against(*w) for w in progress_bar(work, progress, desc="PID")]
    frames = dict(zip(by_teacher, measured))
    table = pd.concat([frames[(r.config.dataset, t)][r.config.key] for r, t in pairs], ignore_index=True)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "pid.csv", table.to_csv(index=False))
    return table


def label_information(against: TeacherConfig, dataset: str, settings: PIDSettings = PIDSettings(),
                      seed: int = 0) -> pd.DataFrame:
    """I(Y; T) in bits of each distilled layer of a teacher on the test split, estimated like every
    PID here, with the same estimate on shuffled labels (``control``) beside it: one row per
    (layer, control)."""
    labels = data.targets(experiment.test_set(dataset))
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    rows = []
    for layer, features in enumerate(experiment.teacher_representations(against, dataset), start=1):
        for control, y in ((False, labels), (True, shuffled)):
            rows.append({"layer": layer, "control": control,
                         "mi": pid.label_mi(features, y, settings.n_clusters, settings.n_components, seed)})
    return pd.DataFrame(rows)
