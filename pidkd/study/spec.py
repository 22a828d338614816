"""The schema of a profile: one :class:`ProfileSpec`, composed of each component's own settings
(the recipe, the noise, each method's ``Params``), against which a profile is validated once."""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveInt, create_model, model_validator

from ..distill.data import DATASETS
from ..distill.methods import METHODS
from ..distill.schema import Schema
from ..distill.settings import Recipe
from ..distill.teachers import KINDS, Noise
from ..pid import N_CLUSTERS, N_COMPONENTS

DatasetName = Literal[tuple(DATASETS)]
TeacherKind = Literal[KINDS]
MethodName = Literal[tuple(METHODS)]



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


Methods = create_model(
    "Methods", __base__=Schema, __doc__="Each method's parameters: its ``Params``, for every method of the registry.",
    **{name: (method.Params, method.Params()) for name, method in METHODS.items()})


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


def over(base: Schema, patch: Schema) -> Schema:
    """``base`` with the fields ``patch`` sets (recursively) put over it."""
    return type(base).model_validate(merge(base.model_dump(exclude_unset=True), patch.model_dump(exclude_unset=True)))


def merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``own`` over ``base``: mappings merged key by key, anything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in own.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge(merged[key], value) if both else copy.deepcopy(value)
    return merged
