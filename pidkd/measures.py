"""PID measures of runs: the teacher's and the student's test-set representations at the PID
epochs, decomposed about the label (SPEC §2, §7); one row per (run, epoch, layer, control) of
``results/<profile>/pid.csv``. Each run's rows are cached in its folder."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pandas as pd
import torch

from . import data, experiment, pid
from .errors import ConfigError
from .train import progress_bar


LAST_LAYER = (-1,)
"""The distilled layers measured by default: the last."""


def measure_run(
    done: experiment.Run,
    layers: tuple[int, ...] = LAST_LAYER,
    n_clusters: int = 5,
    n_components: int = 5,
    seed: int = 0,
    teacher: list[torch.Tensor] | None = None,
) -> pd.DataFrame:
    """PID between the teacher's and the student's representations at every PID epoch of a
    distillation run, for ``layers`` (indices into the distilled layers; -1 is the last), with the
    labels and with shuffled labels (``control``, the plug-in estimator's bias at this sample size)."""
    config = done.config
    if config.teacher is None:
        raise ConfigError(f"run {config.key} ({config.method}) has no teacher to measure against")
    fields = [f.name for f in dataclasses.fields(pid.Measurement)]
    settings = dict(layers=list(layers), n_clusters=n_clusters, n_components=n_components, seed=seed, fields=fields)
    cache = done.directory / f"pid-{hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:8]}.csv"
    if cache.exists():
        return pd.read_csv(cache, dtype={"key": str})  # keys are hex: keep leading zeros
    teacher = teacher or experiment.teacher_representations(config.teacher, config.dataset)
    labels = data.targets(experiment.test_set(config.dataset))
    rows = []
    for layer in layers:
        index = layer % len(teacher)
        codes_t = pid.discretize(teacher[index], n_clusters, n_components, seed)
        for epoch in config.pid_epochs:
            student = experiment.load_representations(done, epoch)[index]
            if student is None:
                raise ConfigError(f"run {config.key} saved no features of layer {index + 1}: its pid layers are "
                                  f"{list(config.pid_layers)}; measure those, or rerun it with that layer in pid.layers")
            codes_s = pid.discretize(student, n_clusters, n_components, seed)
            for control in (False, True):
                m = pid.measure_codes(codes_t, codes_s, labels, seed, control=control)
                rows.append({"epoch": epoch, "layer": index + 1, "control": control, **m.as_dict()})
    frame = experiment.label_rows(config, pd.DataFrame(rows))
    experiment.write_atomic(cache, frame.to_csv(index=False))
    return frame


def measure_runs(runs: list[experiment.Run], profile_folder: Path | None = None, progress: bool = True, **settings) -> pd.DataFrame:
    """``measure_run`` over the distillation runs among ``runs``, sharing each teacher's
    representations; written to ``profile_folder/pid.csv`` when given."""
    teachers: dict[tuple[str, str], list[torch.Tensor]] = {}
    frames = []
    for done in progress_bar([r for r in runs if r.config.teacher is not None], progress, desc="PID"):
        # an untrained teacher's config names no dataset, so the dataset is part of the key
        key = (done.config.dataset, json.dumps(dataclasses.asdict(done.config.teacher), sort_keys=True, default=str))
        if key not in teachers:  # keep only the measured layers: a CUB teacher's four take about 8 GB
            features = experiment.teacher_representations(done.config.teacher, done.config.dataset)
            measured = {layer % len(features) for layer in settings.get("layers", LAST_LAYER)}
            teachers[key] = [f if i in measured else None for i, f in enumerate(features)]
        frames.append(measure_run(done, teacher=teachers[key], **settings))
    table = pd.concat(frames, ignore_index=True)
    if profile_folder is not None:
        profile_folder.mkdir(parents=True, exist_ok=True)
        experiment.write_atomic(profile_folder / "pid.csv", table.to_csv(index=False))
    return table
