"""PID measures of runs: the teacher's and the student's test-set representations at the PID
epochs, decomposed about the label (docs/method.md); one row per (run, epoch, layer, control) of
``results/<profile>/pid.csv``. Each run's rows are cached in its folder."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from . import data, experiment, pid
from .config import PIDSettings, Profile, TeacherConfig
from .errors import ConfigError
from .results import Result, label_rows, load_representations
from .storage import write_atomic
from .train import progress_bar


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
    fields = [f.name for f in dataclasses.fields(pid.Measurement)]
    measured = dict(settings.model_dump(include={"layers", "n_clusters", "n_components", "bootstrap"}), seed=seed,
                    fields=fields, teacher=against.as_dict())
    cache = result.directory / f"pid-{hashlib.sha256(json.dumps(measured).encode()).hexdigest()[:8]}.csv"
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
                m = pid.measure_codes(codes_t, codes_s, labels, seed, control=control, bootstrap=bootstrap)
                rows.append({"epoch": epoch, "layer": index + 1, "control": control, **m.as_dict()})
    frame = label_rows(config, pd.DataFrame(rows), teacher=against)
    write_atomic(cache, frame.to_csv(index=False))
    return frame


def measure_runs(results: list[Result], profile: Profile, folder: Path | None = None, *,
                 baselines_against: Sequence[str] = (), progress: bool = True) -> pd.DataFrame:
    """``measure_run`` with the profile's PID settings over ``results``: each distillation run
    against its teacher, each baseline against the profile's teacher of each kind in
    ``baselines_against``, sharing each teacher's representations; written to ``folder/pid.csv``
    when given."""
    settings = profile.pid
    results = list({r.config.key: r for r in results}.values())  # a baseline recurs under every teacher kind
    pairs = [(r, t) for r in results for t in
             ([r.config.teacher] if r.config.teacher else [profile.teacher(r.config.dataset, k) for k in baselines_against])]
    features: dict[tuple[str, TeacherConfig], list[torch.Tensor | None]] = {}
    frames = []
    for result, against in progress_bar(pairs, progress, desc="PID"):
        # an untrained teacher's config names no dataset, so the dataset is part of the key
        key = (result.config.dataset, against)
        if key not in features:  # keep only the measured layers: a CUB teacher's four take about 8 GB
            every = experiment.teacher_representations(against, result.config.dataset)
            measured = {layer % len(every) for layer in settings.layers}
            features[key] = [f if i in measured else None for i, f in enumerate(every)]
        frames.append(measure_run(result, settings, against, teacher=features[key]))
    table = pd.concat(frames, ignore_index=True)
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
        codes = pid.discretize(features, settings.n_clusters, settings.n_components, seed)
        for control, y in ((False, labels), (True, shuffled)):
            rows.append({"layer": layer, "control": control,
                         "mi": pid.mutual_information(pid.joint_distribution(codes, y))})
    return pd.DataFrame(rows)
