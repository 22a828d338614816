"""Profiles: a shipped name or a YAML file (:mod:`~pidkd.study.sources`) with dotted-key
overrides, validated once against :class:`~pidkd.study.spec.ProfileSpec` into a frozen
:class:`Profile`, which resolves each run (a :class:`~pidkd.study.grids.Point`) to its
:class:`~pidkd.study.identity.Config`."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..distill.methods import METHODS
from ..distill.schema import validate
from ..distill.settings import Recipe
from ..distill.teachers import KINDS
from ..errors import ConfigError, check_name
from . import grids
from .identity import Config, TeacherConfig, items, randomly_initialised, unique
from .sources import is_profile_file, profile_name, profile_names, read, set_entry
from .spec import Dataset, PIDSettings, ProfileSpec, Runs, StudentTraining, TeacherTraining, over


@dataclass(frozen=True, eq=False)
class Profile:
    """A validated profile: the runs it defines (:mod:`~pidkd.study.grids`) and the Config of each.""" 

    name: str
    spec: ProfileSpec
    source: str = ""
    """The shipped profile's name, or the absolute path of the profile's file."""

    @classmethod
    def load(cls, profile: str | Path = "embedded", overrides: Mapping[str, Any] | None = None) -> Profile:
        """Profile ``profile`` (a shipped name or a YAML path) with dotted-key ``overrides``
        (e.g. ``{"student_training.epochs": 5}``), checked in full: a bad entry anywhere is a
        ConfigError naming it, and so is a schedule (milestones, PID epochs) left beyond its run's
        epochs. (Whether a method's schedule fits the epochs is checked when a Config of it is made,
        before any run starts.)"""
        raw = read(str(profile))
        for dotted, value in (overrides or {}).items():
            set_entry(raw, dotted, value)
        name = profile_name(profile)
        if is_profile_file(profile) and name in profile_names():
            raise ConfigError(f"profile file {profile} has the name of the shipped profile {name!r}, whose results "
                              f"folder it would share; rename the file")
        source = str(Path(profile).resolve()) if is_profile_file(profile) else name
        loaded = cls(name, validate(ProfileSpec, raw, f"profile {name!r}"), source)
        for dataset in loaded.spec.datasets:  # every dataset's trainings resolve
            loaded.training(dataset, "teacher_training")
            loaded.training(dataset, "student_training")
        for dataset in loaded.datasets:  # the grid's fit their epochs (another dataset's when it is asked for)
            loaded._check_epochs(dataset)
        return loaded

    def _check_epochs(self, dataset: str) -> None:
        """A ConfigError if any of ``dataset``'s milestones or PID epochs lies at or beyond its run's
        epochs (a milestone there never takes effect, a PID epoch is never reached): what an override
        of ``epochs`` alone would silently leave behind."""
        teacher, student = self.training(dataset, "teacher_training"), self.training(dataset, "student_training")
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

    def training(self, dataset: str, section: str) -> TeacherTraining | StudentTraining:
        """The profile-wide ``section`` with the dataset's own over it; its epochs must be set."""
        training = over(getattr(self.spec, section), getattr(self._entry(dataset), section))
        if training.epochs is None:
            raise ConfigError(f"profile {self.name!r}: {section}.epochs is not set, neither profile-wide nor "
                              f"in datasets.{dataset}.{section}")
        return training

    def teacher_seed(self, dataset: str, seed: int) -> int:
        """The seed of the teacher that the students of seed ``seed`` distil from."""
        fixed = self.training(dataset, "teacher_training").seed
        return seed if fixed is None else fixed

    def teacher_training(self, dataset: str, seed: int) -> Config:
        """The run that trains a dataset's teacher of seed ``seed``: a baseline run of the teacher
        model (for an ImageNet-pretrained one, its fine-tuning)."""
        self._check_epochs(dataset)
        entry, training = self._entry(dataset), self.training(dataset, "teacher_training")
        return self._config(dataset, entry.teacher_model, entry.teacher_options, training, training.recipe, seed,
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
        entry, training = self._entry(dataset), self.training(dataset, "student_training")
        recipe = over(training.recipe, training.distillation) if cls.needs_teacher else training.recipe
        if method in training.method_recipes:
            recipe = over(recipe, training.method_recipes[method])
        params = getattr(over(self.spec.methods, entry.methods), method)
        try:
            cls.check(params, training.epochs)
        except ConfigError as error:
            raise ConfigError(f"profile {self.name!r}: methods.{method} with student_training.epochs "
                              f"{training.epochs}: {error}") from error
        return self._config(
            dataset, entry.student_model, entry.student_options, training, recipe, seed,
            method=method,
            params=params,
            teacher=self.teacher(dataset, teacher, self.teacher_seed(dataset, seed)) if cls.needs_teacher else None,
            pid_epochs=training.pid_epochs,
            pid_layers=self.spec.pid.layers,
            pid_dtype=self.spec.pid.dtype,
        )

    def _config(self, dataset: str, model: str, options: Mapping[str, Any], training: TeacherTraining | StudentTraining,
                recipe: Recipe, seed: int, samples_per_class: int | None = None, **rest: Any) -> Config:
        """The Config of a run of ``model`` on ``dataset``: what teachers' and students' runs share
        (a run's own ``samples_per_class``, else the dataset's)."""
        entry = self._entry(dataset)
        return Config(profile=self.name, dataset=dataset, model=model, seed=seed, epochs=training.epochs,
                      recipe=recipe, options=items(options), samples_per_class=samples_per_class or entry.samples_per_class,
                      validation_per_class=entry.validation_per_class, augment=entry.augment,
                      evaluate_every=training.evaluate_every, **rest)

    def varied(self, settings: Mapping[str, Any]) -> Profile:
        """This profile with the dotted-key ``settings`` changed (as :meth:`load`'s overrides), checked in
        full; its name, and so its results folder, stay."""
        raw = self.spec.model_dump(exclude_unset=True)
        for dotted, value in settings.items():
            set_entry(raw, dotted, value)
        varied = dataclasses.replace(self, spec=validate(ProfileSpec, raw, f"profile {self.name!r} with {dict(settings)}"))
        for dataset in varied.datasets:
            varied._check_epochs(dataset)
        return varied

    def resolve(self, points: Iterable[grids.Point]) -> list[tuple[grids.Point, Config]]:
        """Each of ``points`` with its Config (the profile varied by its overrides, once per set of them)."""
        profiles: dict[str, Profile] = {}
        resolved = []
        for point in points:
            key = json.dumps(point.settings)
            if key not in profiles:
                profiles[key] = self.varied(dict(point.settings)) if point.settings else self
            resolved.append((point, profiles[key].config(point.dataset, point.teacher, point.method, point.seed)))
        return resolved

    def configs(self, points: Iterable[grids.Point]) -> list[Config]:
        """The Config of each of ``points``, each run once (baselines recur under every teacher kind)."""
        return unique(config for _, config in self.resolve(points))

    def grid(self) -> list[Config]:
        """Every run of the main grid (:func:`~pidkd.study.grids.main`)."""
        return self.configs(grids.main(self))

    def weight_grid(self) -> list[Config]:
        """Every run of the weight sweep (:func:`~pidkd.study.grids.weight_sweep`)."""
        return self.configs(grids.weight_sweep(self))

    def noise_grid(self) -> list[Config]:
        """Every run of the noise sweep (:func:`~pidkd.study.grids.noise_sweep`)."""
        return self.configs(grids.noise_sweep(self))

    def runs(self, runs: Runs, settings: Mapping[str, Any] | None = None) -> list[Config]:
        """Every run of a variation (:func:`~pidkd.study.grids.variation`)."""
        return self.configs(grids.variation(self, runs, settings))

    def some(self, seeds: tuple[int, ...] | None) -> tuple[int, ...]:
        """Those of ``seeds`` the profile has (a notebook may run fewer seeds), else all of its own."""
        return tuple(seed for seed in seeds or () if seed in self.seeds) or self.seeds
