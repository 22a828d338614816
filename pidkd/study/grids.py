"""Which runs a profile defines, each a :class:`Point`: a dataset, teacher kind, method and seed,
with the dotted-key overrides (``--set``) it is trained under. The main grid, the weight and noise
sweeps, the map of choices and the doubling check are all lists of points, and
:meth:`Profile.configs <pidkd.study.profiles.Profile.configs>` resolves them: one way to vary a run."""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .identity import Items, items
from .spec import Runs

if TYPE_CHECKING:
    from .profiles import Profile

CLAIMED = ("vid", "rid")
"""The methods whose weights the claims compare."""


@dataclass(frozen=True)
class Point:
    """One run of a profile, as the command line names it: ``python -m pidkd run --dataset ...
    --teacher ... --method ... --seed ...`` with ``--set`` for each of ``settings``."""

    dataset: str
    teacher: str
    method: str
    seed: int
    settings: Items = ()


def main(profile: Profile) -> list[Point]:
    """The main grid: every dataset x teacher kind x method x seed."""
    return variation(profile, Runs())


def variation(profile: Profile, runs: Runs, settings: Mapping[str, Any] | None = None) -> list[Point]:
    """The grid's datasets x ``runs``' teachers x methods x seeds, under ``settings``; a variation
    of the map of choices is ``variation(profile, choice, choice.set)``."""
    grid, frozen = profile.spec.grid, items(settings or {})
    return [Point(dataset, teacher, method, seed, frozen) for dataset, teacher, method, seed in itertools.product(
        grid.datasets, runs.teachers or grid.teachers, runs.methods or grid.methods, profile.some(runs.seeds))]


def weight_settings(profile: Profile, weights: Mapping[str, float], datasets: tuple[str, ...] | None = None) -> dict[str, float]:
    """The overrides that give each method of ``weights`` its weight on ``datasets`` (all of the
    profile's): set where the dataset's own entry sets the method, else profile-wide."""
    settings = {}
    for dataset, (method, weight) in itertools.product(datasets or tuple(profile.spec.datasets), weights.items()):
        own = method in profile.spec.datasets[dataset].methods.model_fields_set
        settings[f"datasets.{dataset}.methods.{method}.weight" if own else f"methods.{method}.weight"] = weight
    return settings


def weighted(profile: Profile, weights: Mapping[str, float]) -> Profile:
    """``profile`` with each method of ``weights`` at its weight, on every dataset."""
    return profile.varied(weight_settings(profile, weights))


def method_weights(profile: Profile, dataset: str, methods: tuple[str, ...] | None = None) -> dict[str, float]:
    """The distillation weight the profile gives each of ``methods`` (its grid's) that has one, on ``dataset``."""
    params = {m: profile.config(dataset, "trained", m, profile.seeds[0]).params for m in methods or profile.spec.grid.methods}
    return {method: p.weight for method, p in params.items() if "weight" in type(p).model_fields}


def claim_weights(profile: Profile) -> dict[str, dict[str, float]]:
    """The weights the claims are judged at, by name: ``chosen`` (the profile's own), and where the
    weight sweep names them, the ``paper's`` and those at ``equal gain`` (the rest chosen)."""
    own = method_weights(profile, profile.datasets[0], CLAIMED)
    weights, sweep = {"chosen": own}, profile.spec.weight_sweep
    for name, named in (("paper's", sweep.paper if sweep else {}), ("equal gain", sweep.equal_gain if sweep else {})):
        if named:
            weights[name] = {**own, **named}
    return weights


def weight_sweep(profile: Profile) -> list[Point]:
    """The weight sweep: each of its methods at each of its weights under each of its teachers, for
    every dataset of the grid on the sweep's seeds (every seed at the weights the claims use:
    :func:`claim_weights`), and the baselines beside them."""
    sweep = profile.spec.weight_sweep
    if sweep is None:
        raise ConfigError(f"profile {profile.name!r} has no weight_sweep section")
    points = [Point(d, "trained", "baseline", s) for d, s in itertools.product(profile.datasets, profile.seeds)]
    claimed = claim_weights(profile).values()
    for method, weights in sweep.weights.items():
        for weight, dataset, teacher in itertools.product(weights, profile.datasets, sweep.teachers):
            seeds = profile.seeds if any(w.get(method) == weight for w in claimed) else profile.some(sweep.seeds.get(teacher))
            settings = items(weight_settings(profile, {method: weight}, (dataset,)))
            points += [Point(dataset, teacher, method, seed, settings) for seed in seeds]
    return points


def noise_sweep(profile: Profile) -> list[Point]:
    """The noise sweep: its methods under noisy teachers of each sigma, for every dataset and seed
    of the grid, and the baselines beside them."""
    sweep = profile.spec.noise_sweep
    if sweep is None:
        raise ConfigError(f"profile {profile.name!r} has no noise_sweep section")
    points = []
    for sigma, dataset, method, seed in itertools.product(
            sweep.sigmas, profile.datasets, ("baseline", *sweep.methods), profile.seeds):
        settings = () if method == "baseline" else (("teachers.noisy.sigma", sigma),)
        points.append(Point(dataset, "noisy", method, seed, settings))
    return points


def doubled(profile: Profile) -> dict[str, Any]:
    """The overrides that train the students twice as long on the same schedule stretched: each
    dataset's epochs and every milestone its student recipes set, doubled."""
    settings = {}
    for dataset in profile.datasets:
        training, where = profile.training(dataset, "student_training"), f"datasets.{dataset}.student_training"
        settings[f"{where}.epochs"] = 2 * training.epochs
        settings[f"{where}.recipe.milestones"] = [2 * m for m in training.recipe.milestones]
        patches = {"distillation": training.distillation, **{f"method_recipes.{m}": r for m, r in training.method_recipes.items()}}
        for name, recipe in patches.items():
            if "milestones" in recipe.model_fields_set:
                settings[f"{where}.{name}.milestones"] = [2 * m for m in recipe.milestones]
    return settings
