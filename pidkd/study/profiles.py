"""Profiles and run configurations. A profile (a shipped name or a YAML file, which may ``extends``
another, plus dotted-key overrides) is validated once against one schema, :class:`ProfileSpec`,
and becomes a frozen :class:`Profile`; it answers the frozen :class:`Config` of every run, whose
hash is the run's key."""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, NonNegativeFloat, NonNegativeInt, PositiveInt, model_validator

from ..distill.data import DATASETS
from ..errors import ConfigError, check_name
from ..distill.methods import KD, METHODS, RID, TED, VID, Baseline
from ..pid import N_CLUSTERS, N_COMPONENTS
from ..distill.schema import Schema, validate
from ..distill.teachers import KINDS, Noise
from ..distill.settings import Recipe

Items = tuple[tuple[str, Any], ...]
"""A frozen, hashable mapping: sorted (name, value) pairs."""

DatasetName = Literal[tuple(DATASETS)]
TeacherKind = Literal[KINDS]
MethodName = Literal[tuple(METHODS)]


def _items(mapping: Mapping[str, Any]) -> Items:
    return tuple(sorted(mapping.items()))


# --------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class TeacherConfig:
    """Which teacher a student distils from; ``training`` is the run that trains it (None for an
    untrained teacher)."""

    kind: str
    model: str
    seed: int
    training: Config | None = None
    options: Items = ()
    reestimate_bn: bool = False
    batch_statistics: bool = False
    noise: Noise | None = None

    def as_dict(self) -> dict[str, Any]:
        """The teacher as plain JSON values."""
        return _plain(self)


@dataclass(frozen=True)
class Config:
    """Everything that determines a run's numbers; its hash is the run's key.

    ``validation_per_class`` training examples of each class are held out as the validation split
    (``val_acc``), on which settings are chosen. At each of ``pid_epochs`` the test-set features of
    the ``pid_layers`` (indices into the distilled layers, -1 the last; empty for all) are saved as
    ``pid_dtype`` for PID measures. ``precision`` (fp32, bf16, fp16, fp64) is what the run trains in: it
    changes the numbers, so it is part of the key (:meth:`in_precision`).
    """

    profile: str
    dataset: str
    model: str
    seed: int
    epochs: int
    recipe: Recipe = Recipe()
    method: str = "baseline"
    params: Items = ()
    teacher: TeacherConfig | None = None
    options: Items = ()
    samples_per_class: int | None = None
    validation_per_class: int = 0
    augment: bool = False
    evaluate_every: int = 1
    pid_epochs: tuple[int, ...] = ()
    pid_layers: tuple[int, ...] = ()
    pid_dtype: str = "float32"
    precision: str = "fp32"

    @property
    def key(self) -> str:
        """A short hash of the resolved config: the run's name on disk."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def teacher_kind(self) -> str:
        return self.teacher.kind if self.teacher else "none"

    def as_dict(self) -> dict[str, Any]:
        """The config as plain JSON values: what a run's config.json holds."""
        return _plain(self)

    def in_precision(self, precision: str) -> Config:
        """This run trained in ``precision``, and so its trained teacher."""
        teacher = self.teacher
        if teacher is not None and teacher.training is not None:
            teacher = dataclasses.replace(teacher, training=teacher.training.in_precision(precision))
        return dataclasses.replace(self, precision=precision, teacher=teacher)


def _plain(value: Any) -> Any:
    """Dataclasses and schemas as dicts, tuples as lists: JSON values."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def randomly_initialised(options: Items) -> Items:
    """Model options without ``pretrained``: the same architecture, not loaded from ImageNet."""
    return tuple(item for item in options if item[0] != "pretrained")


# --------------------------------------------------------------------------- the schema of a profile


class TeacherTraining(Schema):
    """How a dataset's trained teacher is made: a baseline run of the teacher model. With ``seed``
    unset, the students of each seed distil from a teacher of that seed, so a seed replicates the
    whole experiment, teacher and students; with it set, every student distils from that one
    teacher (the authors' design, cheaper where teachers are expensive). ``samples_per_class``
    gives the teacher more training examples than its students (they see the first of them, and
    neither sees a validation example): a teacher that knows more than its students can learn
    from their data, as the paper's ImageNet-trained CUB teacher does."""

    seed: NonNegativeInt | None = None
    epochs: PositiveInt | None = None
    samples_per_class: PositiveInt | None = None
    recipe: Recipe = Recipe()
    evaluate_every: PositiveInt = 1


class StudentTraining(Schema):
    """How students are trained. ``distillation`` holds the recipe fields that differ for the
    methods with a teacher, ``method_recipes`` those that differ for one method; ``pid_epochs``
    are the (1-based) epochs whose test-set representations are saved for PID measures (none may
    lie beyond ``epochs``, nor any milestone at or beyond them: shortening a run by an override of
    ``epochs`` alone is refused, naming what else to set); accuracy is
    measured every ``evaluate_every`` epochs and after the last (evaluation can cost as much as an
    epoch of training on small data)."""

    epochs: PositiveInt | None = None
    recipe: Recipe = Recipe()
    distillation: Recipe = Recipe()
    method_recipes: dict[MethodName, Recipe] = {}
    pid_epochs: tuple[PositiveInt, ...] = ()
    evaluate_every: PositiveInt = 1


class Methods(Schema):
    """Each method's parameters (its ``Params`` in :mod:`pidkd.methods`)."""

    baseline: Baseline.Params = Baseline.Params()
    kd: KD.Params = KD.Params()
    vid: VID.Params = VID.Params()
    rid: RID.Params = RID.Params()
    ted: TED.Params = TED.Params()


class Dataset(Schema):
    """A dataset's networks and data options; its own ``teacher_training``, ``student_training``
    and ``methods`` override the profile-wide sections field by field."""

    teacher_model: str
    student_model: str
    teacher_options: dict[str, Any] = {}
    student_options: dict[str, Any] = {}
    samples_per_class: PositiveInt | None = None
    validation_per_class: NonNegativeInt = 0
    augment: bool = False
    teacher_training: TeacherTraining = TeacherTraining()
    student_training: StudentTraining = StudentTraining()
    methods: Methods = Methods()


class Trained(Schema):
    """The trained teacher has no settings of its own (its training is ``teacher_training``)."""


class Untrained(Schema):
    """``batch_norm``: the frozen fresh network's BatchNorm uses its ``initial`` running statistics
    (mean 0, variance 1: the authors' teacher under PyTorch Lightning >= 2.2), each batch's own
    (``batch``: under Lightning 2.1), or statistics ``reestimated`` on the training data (weights
    unchanged; pidkd's own). The older ``reestimate_bn: true|false`` reads as ``reestimated|initial``."""

    batch_norm: Literal["initial", "batch", "reestimated"] = "initial"

    @model_validator(mode="before")
    @classmethod
    def _reestimate_bn(cls, fields: Any) -> Any:
        if isinstance(fields, Mapping) and "reestimate_bn" in fields:
            rest = {k: v for k, v in fields.items() if k != "reestimate_bn"}
            return {"batch_norm": "reestimated" if fields["reestimate_bn"] else "initial", **rest}
        return fields


class Teachers(Schema):
    trained: Trained = Trained()
    untrained: Untrained = Untrained()
    noisy: Noise | None = None


class PIDSettings(Schema):
    """How runs' representations are measured: the distilled ``layers`` saved and measured (-1 the
    last), stored as ``dtype``, discretised into ``n_clusters`` k-means clusters of ``n_components``
    PCA components (the defaults of :func:`pidkd.pid.measure`, backed by notebook 2); at the last
    PID epoch, ``bootstrap`` resamples of the test examples give each term a 95% interval (0: none).
    pid.csv is in bits; ``units`` is how figures and tables show it (the authors plotted nats)."""

    n_clusters: PositiveInt = N_CLUSTERS
    n_components: PositiveInt = N_COMPONENTS
    layers: tuple[int, ...] = (-1,)
    dtype: Literal["float32", "float16"] = "float32"
    units: Literal["bits", "nats"] = "bits"
    bootstrap: NonNegativeInt = 0


class TrustStudy(Schema):
    """The size of notebook 2's study of the measure on ground-truth cases: the sample counts of its
    error curves (the middle one serves its other tables), the repeats of each setting, the bootstrap
    resamples of its interval table, and how many data sets test the intervals' coverage, with how
    many resamples each."""

    n_samples: tuple[PositiveInt, ...] = Field((250, 1000, 5000), min_length=1)
    repeats: PositiveInt = 2
    bootstrap: int = Field(100, ge=20)
    coverage_sets: int = Field(12, ge=2)
    coverage_bootstrap: int = Field(40, ge=20)


class NoiseSweep(Schema):
    """The noise sweep: these ``methods`` under noisy teachers of each of ``sigmas``."""

    sigmas: tuple[NonNegativeFloat, ...] = Field(min_length=1)
    methods: tuple[MethodName, ...] = Field(min_length=1)


class WeightSweep(Schema):
    """The distillation-weight sweep: each method's ``weights`` under each of ``teachers`` for every
    dataset of the grid, beside the baselines (weight 0), on every seed of the grid but where
    ``seeds`` names fewer for a teacher kind. The weights the claims are judged at get every seed:
    the profile's own (chosen on validation with the trained teacher), the ``paper``'s, and the
    ``equal_gain`` ones (a method's weight whose trained-teacher validation gain is nearest RID's at
    its weight; notebook 4's rule)."""

    weights: dict[MethodName, tuple[NonNegativeFloat, ...]]
    teachers: tuple[TeacherKind, ...] = ("trained", "untrained")
    seeds: dict[TeacherKind, tuple[NonNegativeInt, ...]] = {}
    paper: dict[MethodName, NonNegativeFloat] = {}
    equal_gain: dict[MethodName, NonNegativeFloat] = {}


class Runs(Schema):
    """Some of the grid's runs: its datasets and these ``teachers``, ``methods`` and ``seeds`` (each
    None: the grid's; seeds the profile does not have are left out)."""

    teachers: tuple[TeacherKind, ...] | None = None
    methods: tuple[MethodName, ...] | None = None
    seeds: tuple[NonNegativeInt, ...] | None = None


class Variation(Runs):
    """Runs of the profile with the entries ``set`` (dotted keys, as ``--set``) changed. Runs that
    the change leaves as they were are the main grid's own (their keys are the same)."""

    set: dict[str, Any] = Field(min_length=1)


class Grid(Schema):
    """The main grid: every dataset x teacher kind x method x seed."""

    datasets: tuple[DatasetName, ...] = Field(min_length=1)
    teachers: tuple[TeacherKind, ...] = Field(min_length=1)
    methods: tuple[MethodName, ...] = Field(min_length=1)


class ProfileSpec(Schema):
    """Everything a profile file may say; docs/profiles.md explains each section."""

    description: str = ""
    seeds: tuple[NonNegativeInt, ...] = Field(min_length=1)
    grid: Grid
    datasets: dict[DatasetName, Dataset]
    teacher_training: TeacherTraining = TeacherTraining()
    student_training: StudentTraining = StudentTraining()
    teachers: Teachers = Teachers()
    methods: Methods = Methods()
    pid: PIDSettings = PIDSettings()
    trust: TrustStudy = TrustStudy()
    noise_sweep: NoiseSweep | None = None
    weight_sweep: WeightSweep | None = None
    choices: dict[str, Variation] = {}
    """The map of choices: each named variation of the main setting, one choice at a time (notebook 7)."""
    doubling: Runs | None = None
    """The convergence check: these runs at twice the epochs (:meth:`Profile.doubled`; notebook 4)."""

    @model_validator(mode="after")
    def _consistent(self) -> ProfileSpec:
        missing = [d for d in self.grid.datasets if d not in self.datasets]
        if missing:
            raise ValueError(f"grid.datasets names {', '.join(missing)} but datasets has no entry for it")
        needs_noise = "noisy" in self.grid.teachers or self.noise_sweep is not None
        if needs_noise and self.teachers.noisy is None:
            raise ValueError("teachers.noisy must give the noise (fraction, sigma) of the noisy teacher")
        embedded = [name for name, entry in self.datasets.items() if entry.augment and DATASETS[name].embedded]
        if embedded:
            raise ValueError(f"datasets.{embedded[0]}.augment: only image datasets (cifar10, cifar100, cub200) augment")
        return self


def _over(base: Schema, patch: Schema) -> Schema:
    """``base`` with the fields ``patch`` sets (recursively) put over it."""
    return type(base).model_validate(_merge(base.model_dump(exclude_unset=True), patch.model_dump(exclude_unset=True)))


def _merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``own`` over ``base``: mappings merged key by key, anything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in own.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both else copy.deepcopy(value)
    return merged


# --------------------------------------------------------------------------- profiles


def profile_names() -> list[str]:
    """The profiles that ship with pidkd."""
    files = resources.files("pidkd.profiles").iterdir()
    return sorted(p.name.removesuffix(".yaml") for p in files if p.name.endswith(".yaml"))


def is_profile_file(profile: str | Path) -> bool:
    """Whether ``profile`` names a YAML file rather than a shipped profile."""
    return str(profile).endswith((".yaml", ".yml"))


def profile_name(profile: str | Path) -> str:
    """The name a profile's results go under (``results/<name>``): a shipped profile's own name, a
    file's name without its folder and suffix."""
    return Path(str(profile)).stem if is_profile_file(profile) else str(profile)


def _read(profile: str, extended: tuple[str, ...] = ()) -> dict[str, Any]:
    """A profile's YAML as a dict, with the profile it ``extends`` merged under it."""
    if profile in extended:
        raise ConfigError(f"profile {profile!r} extends itself through {' -> '.join(extended)}")
    if is_profile_file(profile):
        path = Path(profile)
        if not path.is_file():
            raise ConfigError(f"profile file {path} does not exist")
        text, where = path.read_text(), str(path)
    else:
        check_name("profile", profile, profile_names())
        text, where = resources.files("pidkd.profiles").joinpath(f"{profile}.yaml").read_text(), f"profile {profile!r}"
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where} is not valid YAML{at}: {getattr(error, 'problem', None) or error}") from error
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a YAML mapping of sections, not {type(spec).__name__}")
    base = spec.pop("extends", None)
    return _merge(_read(str(base), (*extended, profile)), spec) if base else spec


def _set(spec: dict[str, Any], dotted: str, value: Any) -> None:
    """Set the entry ``dotted`` (``section.key``) of a raw profile, making sections as needed."""
    node = spec
    *parents, leaf = dotted.split(".")
    for depth, name in enumerate(parents):
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {'.'.join(parents[:depth + 1])} is a value, not a section")
    node[leaf] = copy.deepcopy(value)


@dataclass(frozen=True, eq=False)
class Profile:
    """A validated profile: the grids it defines and the Config of each of their runs.
    ``weights`` replace methods' distillation weights (see :meth:`with_weights`)."""

    name: str
    spec: ProfileSpec
    source: str = ""
    """The shipped profile's name, or the absolute path of the profile's file."""
    weights: Items = ()

    @classmethod
    def load(cls, profile: str | Path = "embedded", overrides: Mapping[str, Any] | None = None) -> Profile:
        """Profile ``profile`` (a shipped name or a YAML path) with dotted-key ``overrides``
        (e.g. ``{"student_training.epochs": 5}``), checked in full: a bad entry anywhere is a
        ConfigError naming it, and so is a schedule (milestones, PID epochs) left beyond its run's
        epochs. (Whether a method's schedule fits the epochs is checked when a Config of it is made,
        before any run starts.)"""
        raw = _read(str(profile))
        for dotted, value in (overrides or {}).items():
            _set(raw, dotted, value)
        name = profile_name(profile)
        if is_profile_file(profile) and name in profile_names():
            raise ConfigError(f"profile file {profile} has the name of the shipped profile {name!r}, whose results "
                              f"folder it would share; rename the file")
        source = str(Path(profile).resolve()) if is_profile_file(profile) else name
        loaded = cls(name, validate(ProfileSpec, raw, f"profile {name!r}"), source)
        for dataset in loaded.spec.datasets:  # every dataset's trainings resolve
            loaded._training(dataset, "teacher_training")
            loaded._training(dataset, "student_training")
        for dataset in loaded.datasets:  # the grid's fit their epochs (another dataset's when it is asked for)
            loaded._check_epochs(dataset)
        return loaded

    def _check_epochs(self, dataset: str) -> None:
        """A ConfigError if any of ``dataset``'s milestones or PID epochs lies at or beyond its run's
        epochs (a milestone there never takes effect, a PID epoch is never reached): what an override
        of ``epochs`` alone would silently leave behind."""
        teacher, student = self._training(dataset, "teacher_training"), self._training(dataset, "student_training")
        recipes = {"teacher_training.recipe": (teacher.recipe, teacher.epochs),
                   "student_training.recipe": (student.recipe, student.epochs),
                   "student_training.distillation": (student.distillation, student.epochs),
                   **{f"student_training.method_recipes.{method}": (recipe, student.epochs)
                      for method, recipe in student.method_recipes.items()}}
        where = f" (datasets.{dataset})" if len(self.datasets) > 1 or dataset not in self.datasets else ""
        # a recipe patch (distillation, a method's) is only at fault for milestones it sets itself
        own = {section: recipe for section, (recipe, _) in recipes.items()
               if section.endswith(".recipe") or "milestones" in recipe.model_fields_set}
        problems = [f"{section}.milestones {list(recipe.milestones)}{where} are not all below its {epochs} epochs"
                    for section, (recipe, epochs) in recipes.items()
                    if section in own and any(m >= epochs for m in recipe.milestones)]
        if any(e > student.epochs for e in student.pid_epochs):
            problems.append(f"student_training.pid_epochs {list(student.pid_epochs)}{where} go beyond its "
                            f"{student.epochs} epochs")
        if problems:
            raise ConfigError(f"profile {self.name!r}: {'; '.join(problems)}: shorten or empty them too (e.g. --set "
                              f"student_training.recipe.milestones=[]), or start from the smoke profile")

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.spec.seeds

    @property
    def pid(self) -> PIDSettings:
        return self.spec.pid

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets of the profile's grid."""
        return self.spec.grid.datasets

    def _entry(self, dataset: str) -> Dataset:
        return self.spec.datasets[check_name("dataset", dataset, self.spec.datasets)]

    def _training(self, dataset: str, section: str) -> TeacherTraining | StudentTraining:
        """The profile-wide ``section`` with the dataset's own over it; its epochs must be set."""
        training = _over(getattr(self.spec, section), getattr(self._entry(dataset), section))
        if training.epochs is None:
            raise ConfigError(f"profile {self.name!r}: {section}.epochs is not set, neither profile-wide nor "
                              f"in datasets.{dataset}.{section}")
        return training

    def teacher_seed(self, dataset: str, seed: int) -> int:
        """The seed of the teacher that the students of seed ``seed`` distil from."""
        fixed = self._training(dataset, "teacher_training").seed
        return seed if fixed is None else fixed

    def teacher_training(self, dataset: str, seed: int) -> Config:
        """The run that trains a dataset's teacher of seed ``seed``: a baseline run of the teacher
        model (for an ImageNet-pretrained one, its fine-tuning)."""
        self._check_epochs(dataset)
        entry, training = self._entry(dataset), self._training(dataset, "teacher_training")
        return self._run(dataset, entry.teacher_model, entry.teacher_options, training, training.recipe, seed,
                         samples_per_class=training.samples_per_class)

    def teacher(self, dataset: str, kind: str, seed: int) -> TeacherConfig:
        """The teacher of kind ``kind`` and seed ``seed`` of ``dataset`` (trained, or initialised,
        from that seed); :meth:`teacher_seed` says which seed a student distils from."""
        check_name("teacher kind", kind, KINDS)
        training = self.teacher_training(dataset, seed)
        untrained = kind == "untrained"
        if kind == "noisy" and self.spec.teachers.noisy is None:
            raise ConfigError(f"profile {self.name!r} has no teachers.noisy section: give fraction and sigma")
        return TeacherConfig(
            kind=kind,
            model=training.model,
            seed=training.seed,
            training=None if untrained else training,
            options=randomly_initialised(training.options) if untrained else training.options,
            reestimate_bn=untrained and self.spec.teachers.untrained.batch_norm == "reestimated",
            batch_statistics=untrained and self.spec.teachers.untrained.batch_norm == "batch",
            noise=self.spec.teachers.noisy if kind == "noisy" else None,
        )

    def config(self, dataset: str, teacher: str, method: str, seed: int) -> Config:
        """The Config of one run. A baseline has no teacher, so all teacher kinds share it."""
        cls = METHODS[check_name("method", method, METHODS)]
        check_name("teacher kind", teacher, KINDS)
        self._check_epochs(dataset)
        entry, training = self._entry(dataset), self._training(dataset, "student_training")
        recipe = _over(training.recipe, training.distillation) if cls.needs_teacher else training.recipe
        if method in training.method_recipes:
            recipe = _over(recipe, training.method_recipes[method])
        params = getattr(_over(self.spec.methods, entry.methods), method)
        if method in dict(self.weights):
            params = type(params).model_validate({**params.model_dump(), "weight": dict(self.weights)[method]})
        try:
            cls.check(params, training.epochs)
        except ConfigError as error:
            raise ConfigError(f"profile {self.name!r}: methods.{method} with student_training.epochs "
                              f"{training.epochs}: {error}") from error
        return self._run(
            dataset, entry.student_model, entry.student_options, training, recipe, seed,
            method=method,
            params=_items(params.model_dump()),
            teacher=self.teacher(dataset, teacher, self.teacher_seed(dataset, seed)) if cls.needs_teacher else None,
            pid_epochs=training.pid_epochs,
            pid_layers=self.spec.pid.layers,
            pid_dtype=self.spec.pid.dtype,
        )

    def _run(self, dataset: str, model: str, options: Mapping[str, Any], training: TeacherTraining | StudentTraining,
             recipe: Recipe, seed: int, samples_per_class: int | None = None, **rest: Any) -> Config:
        """The Config of a run of ``model`` on ``dataset``: what teachers' and students' runs share
        (a run's own ``samples_per_class``, else the dataset's)."""
        entry = self._entry(dataset)
        return Config(profile=self.name, dataset=dataset, model=model, seed=seed, epochs=training.epochs,
                      recipe=recipe, options=_items(options), samples_per_class=samples_per_class or entry.samples_per_class,
                      validation_per_class=entry.validation_per_class, augment=entry.augment,
                      evaluate_every=training.evaluate_every, **rest)

    def grid(self) -> list[Config]:
        """Every run of the grid (datasets x teachers x methods x seeds), each once."""
        grid = self.spec.grid
        points = itertools.product(grid.datasets, grid.teachers, grid.methods, self.seeds)
        return unique(self.config(*point) for point in points)

    def with_weights(self, weights: Mapping[str, float]) -> Profile:
        """This profile with each named method's distillation weight replaced, wherever it is set."""
        return dataclasses.replace(self, weights=_items({**dict(self.weights), **weights}))

    def weight_grid(self) -> list[Config]:
        """The weight sweep: each of its methods at each of its weights under each of its teachers,
        for every dataset of the grid on the sweep's seeds (every seed at the weights the claims
        use: :meth:`claim_weights`), and the baselines beside them."""
        sweep = self.spec.weight_sweep
        if sweep is None:
            raise ConfigError(f"profile {self.name!r} has no weight_sweep section")
        configs = [self.config(d, "trained", "baseline", s) for d, s in itertools.product(self.datasets, self.seeds)]
        claim_weights = self.claim_weights().values()
        for method, weights in sweep.weights.items():
            for weight, dataset, teacher in itertools.product(weights, self.datasets, sweep.teachers):
                claimed = any(w.get(method) == weight for w in claim_weights)
                for seed in self.seeds if claimed else self._some(sweep.seeds.get(teacher)):
                    configs.append(self.with_weights({method: weight}).config(dataset, teacher, method, seed))
        return unique(configs)

    def claim_weights(self) -> dict[str, dict[str, float]]:
        """The weights the claims are judged at, by name: ``chosen`` (the profile's own), and where
        the weight sweep names them, the ``paper's`` and those at ``equal gain`` (the rest chosen)."""
        chosen = {method: self.config(self.datasets[0], "trained", method, self.seeds[0]).params
                  for method in ("vid", "rid")}
        weights = {"chosen": {method: dict(params)["weight"] for method, params in chosen.items()}}
        sweep = self.spec.weight_sweep
        for name, named in (("paper's", sweep.paper if sweep else {}), ("equal gain", sweep.equal_gain if sweep else {})):
            if named:
                weights[name] = {**weights["chosen"], **named}
        return weights

    def varied(self, settings: Mapping[str, Any]) -> Profile:
        """This profile with the dotted-key ``settings`` changed (as :meth:`load`'s overrides), checked in
        full; its name, and so its results folder, stay."""
        raw = self.spec.model_dump(exclude_unset=True)
        for dotted, value in settings.items():
            _set(raw, dotted, value)
        varied = dataclasses.replace(self, spec=validate(ProfileSpec, raw, f"profile {self.name!r} with {dict(settings)}"))
        for dataset in varied.datasets:
            varied._check_epochs(dataset)
        return varied

    def runs(self, runs: Runs, settings: Mapping[str, Any] | None = None) -> list[Config]:
        """The grid's datasets x ``runs``' teachers x methods x seeds, with ``settings`` changed
        (:meth:`varied`); a variation's runs are ``profile.runs(variation, variation.set)``."""
        varied, grid = self.varied(settings) if settings else self, self.spec.grid
        points = itertools.product(grid.datasets, runs.teachers or grid.teachers, runs.methods or grid.methods,
                                   self._some(runs.seeds))
        return unique(varied.config(*point) for point in points)

    def _some(self, seeds: tuple[int, ...] | None) -> tuple[int, ...]:
        """Those of ``seeds`` the profile has (a notebook may run fewer seeds), else all of its own."""
        return tuple(seed for seed in seeds or () if seed in self.seeds) or self.seeds

    def doubled(self) -> dict[str, Any]:
        """The settings that train the students twice as long on the same schedule stretched: each
        dataset's epochs and every milestone its student recipes set, doubled."""
        settings = {}
        for dataset in self.datasets:
            training, where = self._training(dataset, "student_training"), f"datasets.{dataset}.student_training"
            settings[f"{where}.epochs"] = 2 * training.epochs
            settings[f"{where}.recipe.milestones"] = [2 * m for m in training.recipe.milestones]
            patches = {"distillation": training.distillation, **{f"method_recipes.{m}": r for m, r in training.method_recipes.items()}}
            for name, recipe in patches.items():
                if "milestones" in recipe.model_fields_set:
                    settings[f"{where}.{name}.milestones"] = [2 * m for m in recipe.milestones]
        return settings

    def noise_grid(self) -> list[Config]:
        """The noise sweep: its methods under noisy teachers of each sigma, for every dataset and
        seed of the grid, and the baselines beside them."""
        sweep = self.spec.noise_sweep
        if sweep is None:
            raise ConfigError(f"profile {self.name!r} has no noise_sweep section")
        configs = []
        for sigma, dataset, method, seed in itertools.product(
                sweep.sigmas, self.datasets, ("baseline", *sweep.methods), self.seeds):
            config = self.config(dataset, "noisy", method, seed)
            if config.teacher is not None:
                noise = config.teacher.noise.model_copy(update={"sigma": sigma})
                config = dataclasses.replace(config, teacher=dataclasses.replace(config.teacher, noise=noise))
            configs.append(config)
        return unique(configs)


def unique(configs: Iterable[Config]) -> list[Config]:
    """``configs`` in order, each run once (baselines recur under every teacher kind)."""
    return list({c.key: c for c in configs}.values())
