"""Experiments: a frozen ``Config`` resolved from a YAML profile, a run key from its hash, and
``run(config)``, which trains once and afterwards returns the cached result."""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from . import data
from .errors import CheckpointError, ConfigError, check_name
from .methods import METHODS, build_method
from .models import build_model
from .teachers import KINDS, Noise, Teacher, reestimate_batchnorm
from .train import Recipe, Speed, fit, load_checkpoint, progress_bar, representations, resolve_device, save_atomic

log = logging.getLogger(__name__)

Items = tuple[tuple[str, Any], ...]
"""A frozen, hashable mapping: sorted (name, value) pairs."""


def _items(mapping: dict[str, Any] | None) -> Items:
    return tuple(sorted((mapping or {}).items()))


PID_DTYPES = ("float32", "float16")
"""How saved representations may be stored; float16 halves the disk a paper-profile run takes."""


@dataclass(frozen=True)
class TeacherConfig:
    """Which teacher a student distils from; ``run`` trains it (None for an untrained teacher)."""

    kind: str
    model: str
    seed: int
    run: Config | None = None
    options: Items = ()
    reestimate_bn: bool = False
    noise: Noise | None = None


@dataclass(frozen=True)
class Config:
    """Everything that determines a run's numbers; its hash is the run's key.

    At each of ``pid_epochs`` the test-set features of the ``pid_layers`` (indices into the
    distilled layers, -1 the last; empty for all) are saved as ``pid_dtype`` for PID measures.
    """

    profile: str
    dataset: str
    model: str
    seed: int
    epochs: int
    recipe: Recipe = field(default_factory=Recipe)
    method: str = "baseline"
    params: Items = ()
    teacher: TeacherConfig | None = None
    options: Items = ()
    samples_per_class: int | None = None
    augment: bool = False
    pid_epochs: tuple[int, ...] = ()
    pid_layers: tuple[int, ...] = ()
    pid_dtype: str = "float32"

    def __post_init__(self) -> None:
        check_name("pid dtype", self.pid_dtype, PID_DTYPES)

    @property
    def key(self) -> str:
        """A short hash of the resolved config: the run's name on disk."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def teacher_kind(self) -> str:
        return self.teacher.kind if self.teacher else "none"


def profile_names() -> list[str]:
    """The profiles that ship with pidkd."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("pidkd.profiles").iterdir() if p.name.endswith(".yaml"))


def load_profile(profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A profile as a dict (a shipped name or a YAML path), with dotted-key ``overrides`` applied.

    A profile that says ``extends: <profile>`` is that profile with its own entries merged over
    it, mapping by mapping.
    """
    spec = _read_profile(profile)
    spec["name"] = Path(profile).stem
    for dotted, value in (overrides or {}).items():
        node = spec
        *parents, leaf = dotted.split(".")
        for name in parents:
            if not isinstance(node.get(name), dict):
                raise ConfigError(f"override {dotted!r}: profile {spec['name']!r} has no section {name!r}")
            node = node[name]
        node[leaf] = copy.deepcopy(value)
    return spec


def _read_profile(profile: str, extended: tuple[str, ...] = ()) -> dict[str, Any]:
    """A profile's YAML as a dict, with what it ``extends`` merged under it."""
    if profile in extended:
        raise ConfigError(f"profile {profile!r} extends itself through {' -> '.join(extended)}")
    if profile.endswith((".yaml", ".yml")):
        path = Path(profile)
        if not path.exists():
            raise ConfigError(f"profile file {path} does not exist")
        text = path.read_text()
    else:
        check_name("profile", profile, profile_names())
        text = resources.files("pidkd.profiles").joinpath(f"{profile}.yaml").read_text()
    spec = yaml.safe_load(text)
    base = spec.pop("extends", None)
    return _merge(_read_profile(base, (*extended, profile)), spec) if base else spec


def _merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``own`` over ``base``: mappings merged key by key, anything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in own.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both else copy.deepcopy(value)
    return merged


def _build(cls: type, fields: dict[str, Any], section: str) -> Any:
    """``cls(**fields)`` for a dataclass, with unknown fields named in a ConfigError."""
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(fields) - set(valid))
    if unknown:
        raise ConfigError(f"unknown field {', '.join(unknown)} in {section}; valid fields: {', '.join(valid)}")
    return cls(**fields)


def _recipe(section: dict[str, Any], extra: dict[str, Any] | None = None) -> Recipe:
    fields = {**section.get("recipe", {}), **(extra or {})}
    if "milestones" in fields:
        fields["milestones"] = tuple(fields["milestones"])
    return _build(Recipe, fields, "recipe")


def _training(spec: dict[str, Any], dataset: str, section: str) -> dict[str, Any]:
    """A profile's ``teacher_training`` or ``student_training`` for ``dataset``: the profile-wide
    section with the dataset's own section of that name merged over it."""
    return _merge(spec[section], spec["datasets"][dataset].get(section) or {})


def teacher_run(spec: dict[str, Any], dataset: str) -> Config:
    """The run that trains a dataset's teacher: a baseline run of the teacher model (for an
    ImageNet-pretrained one, its fine-tuning)."""
    entry = spec["datasets"][check_name("dataset", dataset, spec["datasets"])]
    training = _training(spec, dataset, "teacher_training")
    return Config(
        profile=spec["name"],
        dataset=dataset,
        model=entry["teacher_model"],
        seed=training["seed"],
        epochs=training["epochs"],
        recipe=_recipe(training),
        options=_items(entry.get("teacher_options")),
        samples_per_class=entry.get("samples_per_class"),
        augment=entry.get("augment", False),
    )


def resolve(
    profile: str,
    dataset: str,
    teacher: str,
    method: str,
    seed: int,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """The Config of one grid point. A baseline run has no teacher, so all teacher kinds share it."""
    return _resolve(load_profile(profile, overrides), dataset, teacher, method, seed)


def teacher_config(profile: str, dataset: str, kind: str, overrides: dict[str, Any] | None = None) -> TeacherConfig:
    """The teacher of kind ``kind`` that a profile's students of ``dataset`` distil from."""
    return _teacher_config(load_profile(profile, overrides), dataset, kind)


def _teacher_config(spec: dict[str, Any], dataset: str, kind: str) -> TeacherConfig:
    check_name("dataset", dataset, spec["datasets"])
    check_name("teacher kind", kind, KINDS)
    trains_teacher = teacher_run(spec, dataset)
    settings = dict(spec["teachers"].get(kind) or {})
    reestimate_bn = bool(settings.pop("reestimate_bn", False)) if kind == "untrained" else False
    if kind != "noisy" and settings:
        valid = "reestimate_bn" if kind == "untrained" else "none"
        raise ConfigError(f"unknown field {', '.join(sorted(settings))} in teachers.{kind}; valid fields: {valid}")
    return TeacherConfig(
        kind=kind,
        model=trains_teacher.model,
        seed=trains_teacher.seed,
        run=None if kind == "untrained" else trains_teacher,
        options=_randomly_initialised(trains_teacher.options) if kind == "untrained" else trains_teacher.options,
        reestimate_bn=reestimate_bn,
        noise=_build(Noise, settings, "teachers.noisy") if kind == "noisy" else None,
    )


def _resolve(spec: dict[str, Any], dataset: str, teacher: str, method: str, seed: int) -> Config:
    check_name("dataset", dataset, spec["datasets"])
    check_name("teacher kind", teacher, KINDS)
    check_name("method", method, METHODS)
    teacher_config = _teacher_config(spec, dataset, teacher) if METHODS[method].needs_teacher else None
    entry = spec["datasets"][dataset]
    training = _training(spec, dataset, "student_training")
    distillation = training.get("distillation") if METHODS[method].needs_teacher else {}
    own_recipe = (training.get("method_recipes") or {}).get(method)
    return Config(
        profile=spec["name"],
        dataset=dataset,
        model=entry["student_model"],
        seed=seed,
        epochs=training["epochs"],
        recipe=_recipe(training, {**(distillation or {}), **(own_recipe or {})}),
        method=method,
        params=_items(spec["methods"].get(method)),
        teacher=teacher_config,
        options=_items(entry.get("student_options")),
        samples_per_class=entry.get("samples_per_class"),
        augment=entry.get("augment", False),
        pid_epochs=tuple(training.get("pid_epochs", ())),
        pid_layers=tuple(spec.get("pid", {}).get("layers", ())),
        pid_dtype=spec.get("pid", {}).get("dtype", "float32"),
    )


def grid(profile: str, overrides: dict[str, Any] | None = None) -> list[Config]:
    """Every run of a profile's grid (datasets x teachers x methods x seeds), each once."""
    spec = load_profile(profile, overrides)
    points = itertools.product(
        spec["grid"]["datasets"], spec["grid"]["teachers"], spec["grid"]["methods"], spec["seeds"]
    )
    return _unique(_resolve(spec, *point) for point in points)


def noise_grid(profile: str, overrides: dict[str, Any] | None = None) -> list[Config]:
    """The noise sweep of a profile: its ``noise_sweep`` methods under noisy teachers of each
    ``sigmas`` level, for every dataset and seed of its grid, and the baselines beside them."""
    spec = load_profile(profile, overrides)
    sweep = spec["noise_sweep"]
    configs = []
    for sigma in sweep["sigmas"]:
        noisy = load_profile(profile, {**(overrides or {}), "teachers.noisy.sigma": sigma})
        points = itertools.product(spec["grid"]["datasets"], ["noisy"], ["baseline", *sweep["methods"]], spec["seeds"])
        configs.extend(_resolve(noisy, *point) for point in points)
    return _unique(configs)


def _unique(configs: Iterable[Config]) -> list[Config]:
    """``configs`` in order, each run once (baselines recur under every teacher kind)."""
    return list({c.key: c for c in configs}.values())


def results_root(root: str | Path | None = None) -> Path:
    """Where results live: ``root``, else ``$PIDKD_RESULTS``, else ``results`` in the working folder."""
    return Path(root or os.environ.get("PIDKD_RESULTS", "results"))


def data_root() -> Path:
    """Where file-backed datasets are read from: ``$PIDKD_DATA``, else ``data`` in the working folder."""
    return Path(os.environ.get("PIDKD_DATA", "data"))


def run_dir(config: Config, root: str | Path | None = None) -> Path:
    return results_root(root) / config.profile / "runs" / config.key


@dataclass(frozen=True)
class Run:
    """A finished run: its config, its folder, and one metrics row per epoch."""

    config: Config
    directory: Path
    metrics: pd.DataFrame

    @property
    def final_accuracy(self) -> float:
        return float(self.metrics["test_acc"].iloc[-1])


def test_set(dataset: str) -> torch.utils.data.Dataset:
    """The held-out split of ``dataset``: accuracy and PID measures are taken on it."""
    return _load(dataset, "test")


def _load(dataset: str, split: str, samples_per_class: int | None = None, augment: bool = False) -> torch.utils.data.Dataset:
    """A split of ``dataset`` from :func:`data_root`; subsets are fixed across seeds."""
    return data.load_dataset(
        dataset, split=split, root=data_root(), samples_per_class=samples_per_class, augment=augment, seed=0
    )


def _network(model: str, dataset: str, seed: int, options: Items) -> torch.nn.Module:
    info = data.dataset_info(dataset)
    torch.manual_seed(seed)
    return build_model(model, info.num_classes, info.in_channels, **dict(options))


def _randomly_initialised(options: Items) -> Items:
    """Model options without ``pretrained``: the same architecture, not loaded from ImageNet."""
    return tuple(item for item in options if item[0] != "pretrained")


def load_trained(
    config: Config, root: str | Path | None = None, device: str = "auto", progress: bool = True, speed: Speed = Speed()
) -> torch.nn.Module:
    """The network a run trained, with its final weights (training it first if needed)."""
    done = run(config, root=root, device=device, progress=progress, speed=speed)
    # the checkpoint holds every weight: a fine-tuned ImageNet net need not load ImageNet's first
    network = _network(config.model, config.dataset, config.seed, _randomly_initialised(config.options))
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
    """The frozen teacher a config names: trained (and maybe noisy) from its run, or untrained."""
    if config.run is not None:
        network = load_trained(config.run, root=root, device=device, progress=progress, speed=speed)
    else:
        network = _network(config.model, dataset, config.seed, config.options)
        if config.reestimate_bn:
            inputs = (x for x, _ in data.batches(_load(dataset, "train"), 256, shuffle=False))
            reestimate_batchnorm(network, inputs)
    return Teacher(network, config.kind, config.noise)


def run(
    config: Config, root: str | Path | None = None, device: str = "auto", progress: bool = True, speed: Speed = Speed()
) -> Run:
    """Train the run ``config`` describes, or return it from ``results/`` if it finished before.

    An interrupted run resumes from its last checkpoint. Files appear atomically, and
    ``metrics.csv`` is written last: a run without it is not finished. ``speed`` says how it is
    computed on the device (see :class:`~pidkd.train.Speed`); it is not part of the run's key.
    """
    directory = run_dir(config, root)
    metrics_path = directory / "metrics.csv"
    if metrics_path.exists():
        return Run(config, directory, pd.read_csv(metrics_path))
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / "config.json", json.dumps(dataclasses.asdict(config), indent=2, default=str))
    torch_device = resolve_device(device)
    teacher = None
    if config.teacher is not None:
        teacher = make_teacher(config.teacher, config.dataset, root=root, device=device, progress=progress, speed=speed)
    train = _load(config.dataset, "train", config.samples_per_class, config.augment)
    test = test_set(config.dataset)
    student = _network(config.model, config.dataset, config.seed, config.options)
    method = build_method(
        config.method,
        student_channels=student.feature_channels,
        teacher_channels=teacher.feature_channels if teacher else student.feature_channels,
        num_classes=data.dataset_info(config.dataset).num_classes,
        **dict(config.params),
    )
    saved = directory / "representations"
    dtype = getattr(torch, config.pid_dtype)

    def save_representations(epoch: int, network: torch.nn.Module) -> None:
        """The test-set features of the PID layers (None in the place of the others)."""
        if epoch in config.pid_epochs:
            saved.mkdir(exist_ok=True)
            features = representations(network, test, torch_device, speed.workers, config.pid_layers)
            save_atomic([None if f is None else f.to(dtype) for f in features], saved / f"epoch-{epoch:03d}.pt")

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
    )
    metrics = pd.DataFrame(rows)
    write_atomic(metrics_path, metrics.to_csv(index=False))
    return Run(config, directory, metrics)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file, then rename: readers never see a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


RUN_COLUMNS = ["dataset", "model", "teacher", "method", "seed", "noise_sigma", "params", "key"]
"""The columns that say which run a row of ``runs.csv`` belongs to, before its metrics."""


def _labels(config: dict[str, Any], key: str) -> list[Any]:
    """RUN_COLUMNS of a run from its config as a dict (``dataclasses.asdict`` or config.json)."""
    teacher = config["teacher"] or {}
    noise = teacher.get("noise") or {}
    params = json.dumps(dict(config["params"]), sort_keys=True)
    return [config["dataset"], config["model"], teacher.get("kind", "none"), config["method"], config["seed"],
            noise.get("sigma", float("nan")), params, key]


def _frame(config: dict[str, Any], key: str, metrics: pd.DataFrame) -> pd.DataFrame:
    labels = pd.DataFrame([_labels(config, key)] * len(metrics), columns=RUN_COLUMNS)
    return pd.concat([labels, metrics.reset_index(drop=True)], axis=1)


def label_rows(config: Config, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` of one run (metrics, measures) with the run's RUN_COLUMNS in front."""
    return _frame(dataclasses.asdict(config), config.key, rows)


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run and epoch of ``runs``, labelled with RUN_COLUMNS."""
    frames = [label_rows(r.config, r.metrics) for r in runs]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RUN_COLUMNS)


def collect_runs(profile: str, root: str | Path | None = None, write: bool = True) -> pd.DataFrame:
    """One row per finished run and epoch of a profile; written to ``results/<profile>/runs.csv``."""
    base = results_root(root) / profile
    frames = []
    for directory in sorted((base / "runs").glob("*/")):
        metrics_path, config_path = directory / "metrics.csv", directory / "config.json"
        if not metrics_path.exists():
            continue
        try:
            config = json.loads(config_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{config_path} cannot be read ({error}); delete {directory} to rerun it") from error
        frames.append(_frame(config, directory.name, pd.read_csv(metrics_path)))
    runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RUN_COLUMNS)
    if write and frames:
        write_atomic(base / "runs.csv", runs.to_csv(index=False))
    return runs


def is_finished(config: Config, root: str | Path | None = None) -> bool:
    return (run_dir(config, root) / "metrics.csv").exists()


def run_grid(
    configs: list[Config],
    jobs: int = 1,
    root: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    executor: Any = None,
    speed: Speed = Speed(),
) -> list[Run]:
    """Run ``configs``, trained teachers first (students need them), and return them all.

    Finished runs are skipped. Runs go to ``executor`` when given (anything with
    ``submit(fn, *args)`` returning a job with ``result()``: a submitit executor for Slurm,
    say), else to ``jobs`` local processes, each training one run at a time on one CPU thread.
    """
    root = results_root(root).resolve()
    teachers = {c.teacher.run.key: c.teacher.run for c in configs if c.teacher and c.teacher.run}
    for stage in (list(teachers.values()), configs):
        todo = [c for c in dict.fromkeys(stage) if not is_finished(c, root)]
        if not todo:
            continue
        if executor is not None:
            _wait([executor.submit(run, c, root, device, False, speed) for c in todo], progress)
        elif jobs > 1 and len(todo) > 1:
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                _wait([pool.submit(run, c, root, device, False, speed) for c in todo], progress)
        else:
            for config in progress_bar(todo, progress, desc="runs"):
                run(config, root=root, device=device, progress=False, speed=speed)
    return [run(c, root=root, device=device, progress=False) for c in configs]


def _wait(jobs: list[Any], progress: bool) -> None:
    """Wait for submitted runs in order, re-raising the first failure."""
    for job in progress_bar(jobs, progress, desc="runs"):
        job.result()


def load_representations(done: Run, epoch: int) -> list[torch.Tensor]:
    """The student's per-layer features on the test set saved after ``epoch`` (a PID epoch)."""
    path = done.directory / "representations" / f"epoch-{epoch:03d}.pt"
    if not path.exists():
        raise ConfigError(f"{path} does not exist: epoch {epoch} is not among the run's pid_epochs {done.config.pid_epochs}")
    return load_checkpoint(path)


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
