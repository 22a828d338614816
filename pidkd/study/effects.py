"""The paired effects the embedded claims rest on, checked against a committed reference of many seeds
(docs/reproducibility.md, "Checks that can fail").

An effect is a per-seed quantity of final test accuracy, in points: a method's accuracy under a
teacher kind, or its difference from another run of the same seed (the baseline, or the same method
under another teacher). A study's mean over its seeds is checked against the reference's mean over
many more: it fails when it lies further from it than ``z`` standard errors of the difference of the
two means (the reference's seed spread over both counts of seeds), on the side the effect names. A
collapse is checked on one side only: it may deepen, it must not fade. ``z`` is the t quantile that
gives a correct run on another machine, whose runs are in effect other draws of their seeds, at
most a ``FALSE_FAILURE`` chance of failing any of the checks (Bonferroni over the effects).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import StudyCheckFailed

FALSE_FAILURE = 0.01
"""The chance that a correct run on another machine fails some effect's check."""

Run = tuple[str, str]
"""(teacher kind, method); the baseline's teacher kind is ``none``."""


@dataclass(frozen=True)
class Effect:
    """``of`` minus ``less`` (None: ``of`` itself), per seed; ``side``: where a change fails the check
    (``both``, or ``up`` for a collapse, which fails only when it fades)."""

    of: Run
    less: Run | None = None
    side: str = "both"


BASELINE: Run = ("none", "baseline")
COLLAPSE: Run = ("untrained", "vid")
"""The run whose collapse claim (b) rests on: the effects of it alone are checked on one side."""
EFFECTS: dict[str, Effect] = {
    "baseline": Effect(BASELINE),
    **{f"{teacher} {method.upper()}{suffix}": Effect((teacher, method), less, "up" if (teacher, method) == COLLAPSE else "both")
       for suffix, less in (("", None), (" - baseline", BASELINE))
       for teacher in ("trained", "untrained", "noisy") for method in ("vid", "rid")},
    "trained RID - VID": Effect(("trained", "rid"), ("trained", "vid")),
    "untrained RID - VID": Effect(("untrained", "rid"), COLLAPSE),
    "untrained VID - trained VID": Effect(COLLAPSE, ("trained", "vid"), side="up"),
    "untrained RID - trained RID": Effect(("untrained", "rid"), ("trained", "rid")),
}
"""The effects checked, by name: 17 of them, each one the claims (a) to (d) rest on."""


def per_seed(final: pd.DataFrame) -> pd.DataFrame:
    """Every effect of every seed that has its runs: columns effect, seed, value (points). ``final``:
    the last epoch of each run, ``test_acc`` in percent, with ``teacher``, ``method`` and ``seed``."""
    accuracy = final.set_index(["teacher", "method", "seed"])["test_acc"].sort_index()
    runs = set(accuracy.index.droplevel("seed"))
    rows = []
    for name, effect in EFFECTS.items():
        if effect.of not in runs or (effect.less is not None and effect.less not in runs):
            continue
        value = accuracy.loc[effect.of] - (accuracy.loc[effect.less] if effect.less is not None else 0.0)
        rows += [{"effect": name, "seed": seed, "value": v} for seed, v in value.dropna().items()]
    return pd.DataFrame(rows, columns=["effect", "seed", "value"])


def summary(effects: pd.DataFrame) -> pd.DataFrame:
    """Mean, seed standard deviation and count of every effect (:func:`per_seed`'s frame)."""
    return effects.groupby("effect", sort=False)["value"].agg(["mean", "std", "count"]).rename(columns={"count": "n"})


def critical(reference_n: int, checks: int = len(EFFECTS)) -> float:
    """How many standard errors a correct study's effect may move: the t quantile (the reference's
    degrees of freedom) at a two-sided ``FALSE_FAILURE / checks``."""
    return float(stats.t.ppf(1 - FALSE_FAILURE / checks / 2, reference_n - 1))


def tolerance(reference_std: float, reference_n: int, n: int) -> float:
    """How far a study's mean over ``n`` seeds may lie from the reference's mean over ``reference_n``."""
    return critical(reference_n) * reference_std * math.sqrt(1 / n + 1 / reference_n)


def compare(study: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Each effect of ``study`` (:func:`summary`) beside the ``reference``'s (a summary too): its
    tolerance, and whether it fails (lies beyond it on a side its effect fails on)."""
    joined = study.join(reference.add_suffix("_reference"), how="inner")
    joined["tolerance"] = [tolerance(r.std_reference, int(r.n_reference), int(r.n)) for r in joined.itertuples()]
    joined["fails"] = _fails(joined["mean"] - joined["mean_reference"], joined["tolerance"], joined.index)
    return joined


def _fails(difference, tolerance, names):
    """Whether each effect's study mean minus reference mean fails: above its tolerance, or below
    minus it for an effect checked on both sides (arrays broadcast over draws in the last axis)."""
    both = np.array([EFFECTS[name].side == "both" for name in names])
    if np.ndim(difference) > 1 and np.ndim(tolerance) == 1:
        tolerance = np.asarray(tolerance)[:, None]
    if np.ndim(difference) > 1:
        both = both[:, None]
    return (difference > tolerance) | (both & (difference < -np.asarray(tolerance)))


def check(study: pd.DataFrame, reference: pd.DataFrame, where: str) -> pd.DataFrame:
    """:func:`compare`, raising :class:`StudyCheckFailed` on the first failing effect: its number, its
    tolerance and the reference (``where`` names it), in one message."""
    compared = compare(study, reference)
    missing = [name for name in reference.index if name not in compared.index]
    if missing:
        raise StudyCheckFailed(f"effects {', '.join(missing)} are in the reference ({where}) but not in this study's runs")
    for name, row in compared[compared["fails"]].iterrows():
        bound = "within" if EFFECTS[name].side == "both" else "at most"
        raise StudyCheckFailed(
            f"{name}: {row['mean']:+.2f} points over {int(row['n'])} seeds, not {bound} {row['tolerance']:.2f} of the "
            f"reference's {row['mean_reference']:+.2f} ({int(row['n_reference'])} seeds, sd {row['std_reference']:.2f}; "
            f"{where}): a change moved the study (docs/reproducibility.md, 'Checks that can fail')")
    return compared


def reference_file(profile: str) -> Path:
    """Where a shipped profile's committed effects reference lives (beside the profile)."""
    return Path(str(resources.files("pidkd.profiles").joinpath(f"{profile}-effects.csv")))


def read_reference(path: Path) -> pd.DataFrame:
    """A reference written by tests/study_reference.py: a summary (:func:`summary`) by effect."""
    return pd.read_csv(path, comment="#", index_col="effect")


def failure_chance(final: pd.DataFrame, n: int, shift: dict[Run, float] | None = None, draws: int = 2000,
                   seed: int = 0) -> float:
    """How often a study of ``n`` seeds drawn from ``final``'s (many seeds' runs, accuracies in
    percent), with ``shift`` points added to the runs it names (e.g. -2 to the trained RID), fails
    some effect's check against a reference made of the other seeds: with no shift, the chance that a
    correct run fails, out of sample (the reference's count is the other seeds', a little below the
    committed one's, so both chances come out a little lower than the committed reference gives)."""
    rng = np.random.default_rng(seed)
    shifted = final.copy()
    for (teacher, method), points in (shift or {}).items():
        rows = (shifted["teacher"] == teacher) & (shifted["method"] == method)
        shifted.loc[rows, "test_acc"] += points
    truth = per_seed(final).pivot(index="effect", columns="seed", values="value")
    moved = per_seed(shifted).pivot(index="effect", columns="seed", values="value").loc[truth.index]
    seeds = truth.shape[1]
    drawn = np.array([rng.permutation(seeds) for _ in range(draws)])
    study, rest = drawn[:, :n], drawn[:, n:]
    means = moved.to_numpy()[:, study].mean(axis=2)  # effects x draws
    reference, spread = truth.to_numpy()[:, rest].mean(axis=2), truth.to_numpy()[:, rest].std(axis=2, ddof=1)
    tolerances = critical(seeds - n) * spread * math.sqrt(1 / n + 1 / (seeds - n))
    return float(_fails(means - reference, tolerances, truth.index).any(axis=0).mean())
