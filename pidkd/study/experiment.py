"""Config -> trained run: ``run(config)`` trains once and afterwards returns the cached
:class:`~pidkd.study.results.Result`; the teachers runs distil from; grids run in parallel processes or
on any executor (Slurm through submitit)."""
from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..distill import batching, data
from ..distill.files import load_checkpoint, save_atomic, write_atomic
from ..distill.loop import fit, progress_bar
from ..distill.methods import build_method
from ..distill.models import build_model, feature_positions
from ..distill.representations import representations
from ..distill.settings import Precision, Speed, built_in, float_dtype, resolve_device
from ..distill.teachers import Teacher, reestimate_batchnorm
from .folders import data_root, results_root
from .identity import Config, Items, TeacherConfig, randomly_initialised
from .results import METRICS, Result, read_metrics

log = logging.getLogger(__name__)


def in_precision(config: Config, device: str = "auto", speed: Speed = Speed()) -> Config:
    """``config`` in the precision ``speed`` trains it in on ``device`` (``auto``: bf16 or fp16 on
    CUDA, fp32 elsewhere): the run that ``run(config, device=device, speed=speed)`` makes."""
    return config.in_precision(Precision(resolve_device(device), speed.precision).name)


def run_dir(config: Config, root: str | Path | None = None) -> Path:
    """The folder of a run: ``results/<profile>/runs/<key>``."""
    return results_root(root) / config.profile / "runs" / config.key


def is_finished(config: Config, root: str | Path | None = None) -> bool:
    return (run_dir(config, root) / METRICS).exists()


def test_set(dataset: str) -> torch.utils.data.Dataset:
    """The held-out split of ``dataset``: accuracy and PID measures are taken on it."""
    return _load(dataset, "test")


def _load(dataset: str, split: str, samples_per_class: int | None = None, validation_per_class: int = 0,
          augment: bool = False) -> torch.utils.data.Dataset:
    """A split of ``dataset`` from the data folder; subsets are fixed across seeds."""
    return data.load_dataset(dataset, split=split, root=data_root(), samples_per_class=samples_per_class,
                             validation_per_class=validation_per_class, augment=augment, seed=0)


def _network(model: str, dataset: str, seed: int, options: Items, precision: str = "fp32") -> torch.nn.Module:
    """A fresh network initialised from ``seed``, made for training in ``precision`` (see :func:`built_in`)."""
    info = data.dataset_info(dataset)
    torch.manual_seed(seed)
    with built_in(precision):
        return build_model(model, info.num_classes, info.in_channels, **dict(options))


def load_trained(
    config: Config, root: str | Path | None = None, device: str = "auto", progress: bool = True, speed: Speed = Speed()
) -> torch.nn.Module:
    """The network a run trained, with its final weights (training it first if needed)."""
    done = run(config, root=root, device=device, progress=progress, speed=speed)
    # the checkpoint holds every weight: a fine-tuned ImageNet net need not load ImageNet's first
    network = _network(config.model, config.dataset, config.seed, randomly_initialised(config.options),
                       done.config.precision)
    network.load_state_dict(load_checkpoint(done.directory / "checkpoint.pt")["student"])
    return network


def make_teacher(
    config: TeacherConfig,
    dataset: str,
    root: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    speed: Speed = Speed(),
) -> Teacher:
    """The frozen teacher a config names: trained (and maybe noisy) from its run, or untrained (made
    for training in ``speed.precision``)."""
    if config.training is not None:
        network = load_trained(config.training, root=root, device=device, progress=progress, speed=speed)
    else:
        network = _network(config.model, dataset, config.seed, config.options, speed.precision)
        if config.reestimate_bn:
            dtype = float_dtype(speed.precision)
            inputs = (x.to(dtype) for x, _ in batching.batches(_load(dataset, "train"), 256, shuffle=False))
            reestimate_batchnorm(network, inputs)
    return Teacher(network, config.kind, config.noise, batch_statistics=config.batch_statistics)


def run(
    config: Config, root: str | Path | None = None, device: str = "auto", progress: bool = True, speed: Speed = Speed()
) -> Result:
    """Train the run ``config`` describes, or return it from ``results/`` if it finished before.

    An interrupted run resumes from its last checkpoint. Files appear atomically, and
    ``metrics.csv`` is written last: a run without it is not finished; one that fails before its
    first epoch leaves no folder. ``speed`` says how it is computed on the device (see
    :class:`~pidkd.distill.settings.Speed`); it is not part of the run's key.
    """
    config = in_precision(config, device, speed)
    directory = run_dir(config, root)
    if (directory / METRICS).exists():
        return Result(config, directory, read_metrics(directory))
    torch_device = resolve_device(device)
    teacher = None
    if config.teacher is not None:
        teacher = make_teacher(config.teacher, config.dataset, root=root, device=device, progress=progress, speed=speed)
    train = _load(config.dataset, "train", config.samples_per_class, config.validation_per_class, config.augment)
    validation = _load(config.dataset, "validation", validation_per_class=config.validation_per_class) \
        if config.validation_per_class else None
    test = test_set(config.dataset)
    student = _network(config.model, config.dataset, config.seed, config.options, config.precision)
    with built_in(config.precision):
        method = build_method(
            config.method,
            student_channels=student.feature_channels,
            teacher_channels=teacher.feature_channels if teacher else student.feature_channels,
            num_classes=data.dataset_info(config.dataset).num_classes,
            feature_positions=feature_positions(student, test[0][0]),
            params=config.params,
        )
    fresh = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / "config.json", json.dumps(config.as_dict(), indent=2))
    saved = directory / "representations"
    dtype = getattr(torch, config.pid_dtype)

    def save_representations(epoch: int, network: torch.nn.Module) -> str | None:
        """The test-set features of the PID layers (None in the place of the others), as stored; a
        non-finite one stops the run as diverged."""
        if epoch not in config.pid_epochs:
            return None
        features = [None if f is None else f.to(dtype)
                    for f in representations(network, test, torch_device, speed.workers, config.pid_layers)]
        if not all(torch.isfinite(f).all() for f in features if f is not None):
            return "representation"  # (in float16, also one beyond its range)
        saved.mkdir(exist_ok=True)
        save_atomic(features, saved / f"epoch-{epoch:03d}.pt")
        return None

    try:
        rows = fit(
            student,
            method,
            train,
            test,
            recipe=config.recipe,
            epochs=config.epochs,
            seed=config.seed,
            teacher=teacher,
            device=torch_device,
            checkpoint=directory / "checkpoint.pt",
            progress=progress,
            after_epoch=save_representations,
            speed=speed,
            validation_set=validation,
            evaluate_every=config.evaluate_every,
        )
    except BaseException:
        if fresh and not (directory / "checkpoint.pt").exists():  # nothing to resume from
            shutil.rmtree(directory, ignore_errors=True)
        raise
    metrics = pd.DataFrame(rows)
    write_atomic(directory / METRICS, metrics.to_csv(index=False))
    done = Result(config, directory, metrics)
    if done.diverged:
        log.warning("run diverged: %s", done.describe())
    return done


def run_grid(
    configs: list[Config],
    jobs: int = 1,
    root: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    executor: Any = None,
    speed: Speed = Speed(),
) -> list[Result]:
    """Run ``configs``, trained teachers first (students need them), and return them all.

    Finished runs are skipped. Runs go to ``executor`` when given (anything with
    ``submit(fn, *args)`` returning a job with ``result()``: a submitit executor for Slurm,
    say), else to ``jobs`` local processes, each training one run at a time on one CPU thread.
    """
    root = results_root(root).resolve()
    configs = [in_precision(c, device, speed) for c in configs]
    teachers = {c.teacher.training.key: c.teacher.training for c in configs if c.teacher and c.teacher.training}
    for stage in (list(teachers.values()), configs):
        todo = [c for c in dict.fromkeys(stage) if not is_finished(c, root)]
        if not todo:
            continue
        if executor is not None:
            _wait([executor.submit(run, c, root, device, False, speed) for c in todo], progress)
        elif jobs > 1 and len(todo) > 1:
            with processes(jobs) as pool:
                _wait([pool.submit(run, c, root, device, False, speed) for c in todo], progress)
        else:
            for config in progress_bar(todo, progress, desc="runs"):
                run(config, root=root, device=device, progress=False, speed=speed)
    return [run(c, root=root, device=device, progress=False, speed=speed) for c in configs]


class _Workers(ProcessPoolExecutor):
    """Spawned training processes (a fork of a process that has run torch can hang) that ignore
    Ctrl-C (SIGINT) while idle: a Jupyter kernel's shutdown interrupts its whole process group,
    which would print a traceback from every idle worker. A submitted call stays interruptible."""

    def __init__(self, jobs: int) -> None:
        super().__init__(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_interrupts)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return super().submit(_interruptible, fn, *args, **kwargs)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interruptible(fn: Any, *args: Any, **kwargs: Any) -> Any:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return fn(*args, **kwargs)
    finally:
        _ignore_interrupts()


_kept: tuple[tuple[Any, ...], _Workers] | None = None
"""The pool :func:`processes` keeps, with the jobs and environment it was started for."""


@contextlib.contextmanager
def processes(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``jobs`` training processes, kept while the jobs and the environment stay the
    same: a worker takes seconds to start (it imports torch) and a notebook asks for a pool at
    every grid, while a worker reads the environment once ($PIDKD_RESULTS, $PIDKD_THREADS, ...).
    Runs seed all they draw, so a worker trains a run exactly as a fresh one would. A failure or
    an interrupt cancels the queued work and drops the pool."""
    global _kept
    wanted = (jobs, tuple(sorted(os.environ.items())))
    if _kept is not None and _kept[0] != wanted:
        _kept[1].shutdown()
        _kept = None
    if _kept is None:
        _kept = (wanted, _Workers(jobs))
    try:
        yield _kept[1]
    except BaseException:
        _kept[1].shutdown(wait=False, cancel_futures=True)
        _kept = None
        raise


def _wait(jobs: list[Any], progress: bool) -> None:
    """Wait for submitted runs in order, re-raising the first failure."""
    for job in progress_bar(jobs, progress, desc="runs"):
        job.result()


def teacher_representations(
    config: TeacherConfig, dataset: str, root: str | Path | None = None, device: str = "auto"
) -> list[torch.Tensor]:
    """The teacher's per-layer features on the test set, as a student sees them (noisy ones
    corrupted with a fixed seed)."""
    teacher = make_teacher(config, dataset, root=root, device=device, progress=False)
    features = representations(teacher.model, test_set(dataset), resolve_device(device))
    if teacher.noise is None:
        return features
    generator = torch.Generator().manual_seed(0)
    return [teacher.noise.apply(f, generator) for f in features]
