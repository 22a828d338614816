"""The study's protocol on result frames: the weights chosen on validation with the trained teacher,
the weight matched at equal gain, each method's trade-off between a trained and an untrained
teacher, and convergence checked by doubling the epochs. Only trained-teacher validation numbers
choose anything; the untrained and noisy outcomes and the test split are reported, never read to
choose."""
from __future__ import annotations

import pandas as pd

from .claims import interval
from .results import final_percent

DOUBLING_POINTS = 0.5
"""A run has converged when twice its epochs gain it less than this many validation points."""

PLATEAU_POINTS = 0.5
"""The selection runs' plateau criterion (docs/selection/): a run has finished training when its
last tenth of epochs adds less than this many validation points over the tenth before."""


def _paired(values: pd.Series, baseline: pd.Series) -> dict[str, float]:
    """The mean of per-seed differences ``values - baseline`` with its 95% interval, and how many seeds."""
    found = interval(values.sub(baseline).dropna())
    return {"mean": found.mean, "low": found.low, "high": found.high, "std": found.std, "n": found.n}


def _by_seed(final: pd.DataFrame, value: str) -> pd.Series:
    return final.set_index("seed")[value]


def weight_gains(sweep: pd.DataFrame, teacher: str = "trained", value: str = "val_acc",
                 common_seeds: bool = True) -> pd.DataFrame:
    """Per method and weight: the gain (points) of ``value`` over the baseline of the same seed under
    ``teacher``, with its 95% interval; on the seeds every weight of the method has
    (``common_seeds``), so that no weight is judged on more seeds than another."""
    final = final_percent(sweep, ("test_acc", "val_acc"))
    baseline = _by_seed(final[final["method"] == "baseline"], value)
    runs = final[(final["teacher"] == teacher) & (final["method"] != "baseline")]
    rows = []
    for method, of_method in runs.groupby("method", sort=False):
        seeds = set.intersection(*(set(w["seed"]) for _, w in of_method.groupby("weight"))) if common_seeds else None
        for weight, at in of_method.groupby("weight"):
            at = at[at["seed"].isin(seeds)] if seeds is not None else at
            rows.append({"method": method, "weight": weight, value: at[value].mean(),
                         **_paired(_by_seed(at, value), baseline)})
    columns = ["method", "weight", value, "mean", "low", "high", "std", "n"]
    return pd.DataFrame(rows, columns=columns).set_index(["method", "weight"]).sort_index()


def choose_weights(sweep: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """Each swept method's weight with the best mean final validation accuracy under the trained
    teacher among the weights whose gain over the baseline is measurable (its 95% interval above 0):
    a weight at which a method changes nothing measurable is never chosen (with none measurable,
    the best of all, and ``measurable`` says so). Returns the weights and what they were chosen from."""
    gains = weight_gains(sweep)
    gains["measurable"] = gains["low"] > 0
    best = candidates(gains)["val_acc"].groupby(level="method").idxmax()
    return {method: float(weight) for method, weight in best}, gains


def candidates(gains: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`choose_weights`' table it chooses among: each method's measurable weights,
    or all of them where none is."""
    return gains[gains["measurable"] | ~gains.groupby(level="method")["measurable"].transform("any")]


def nearness(gains: pd.DataFrame, chosen: dict[str, float], reference: str = "rid") -> pd.DataFrame:
    """For every method but ``reference``, each weight's distance from the ``reference`` method's
    trained-teacher validation gain at its chosen weight, as ``mean`` (minus the distance: higher is
    nearer), with the gain's ``std`` and ``count`` (``gains``: :func:`choose_weights`' table)."""
    target = gains.loc[(reference, chosen[reference]), "mean"]
    others = gains.drop(reference, level="method")
    return pd.DataFrame({"mean": -(others["mean"] - target).abs(), "std": others["std"], "count": others["n"]})


def equal_gain(gains: pd.DataFrame, chosen: dict[str, float], reference: str = "rid") -> dict[str, float]:
    """For every other method, the weight whose mean trained-teacher validation gain is nearest the
    ``reference`` method's at its chosen weight: where a claim compares the methods at equal benefit
    from a trained teacher."""
    best = nearness(gains, chosen, reference)["mean"].groupby(level="method").idxmax()
    return {method: float(weight) for method, weight in best}


def trade_off(sweep: pd.DataFrame) -> pd.DataFrame:
    """Each method's trade-off at each weight, in test points paired by seed against the baseline:
    its gain under the trained teacher and its change under the untrained one, each with its 95%
    interval, on every seed the weight has; weight 0 (the baseline) is the origin."""
    trained = weight_gains(sweep, "trained", "test_acc", common_seeds=False)
    untrained = weight_gains(sweep, "untrained", "test_acc", common_seeds=False)
    columns = ["mean", "low", "high", "n"]
    return pd.concat({"trained gain": trained[columns], "untrained change": untrained[columns]}, axis=1)


def doubling(main: pd.DataFrame, doubled: pd.DataFrame) -> pd.DataFrame:
    """Per run of the doubling check (dataset, teacher, method, seed): final validation accuracy (%) at the
    main grid's epochs and at twice them, the gain, and whether it is under :data:`DOUBLING_POINTS`."""
    ids = ["dataset", "teacher", "method", "seed"]
    once, twice = (final_percent(runs, ("val_acc",)).set_index(ids) for runs in (main, doubled))
    table = pd.DataFrame({"epochs": once["epoch"].reindex(twice.index), "val_acc": once["val_acc"].reindex(twice.index),
                          "doubled epochs": twice["epoch"], "doubled val_acc": twice["val_acc"]})
    table["gain"] = table["doubled val_acc"] - table["val_acc"]
    table["converged"] = table["gain"] < DOUBLING_POINTS
    return table.sort_index()


def plateau_gain(curve: pd.Series, fraction: float = 0.1) -> float:
    """What a run still gained at its end: the mean validation accuracy (points) of its last
    ``fraction`` of epochs minus that of the ``fraction`` before; ``curve`` is indexed by epoch, the
    last one evaluated (NaN epochs are left out)."""
    epoch, epochs = curve.index.to_series(), curve.index.max()
    width = max(1, round(fraction * epochs))
    last = curve[epoch > epochs - width].mean()
    before = curve[(epoch > epochs - 2 * width) & (epoch <= epochs - width)].mean()
    return 100 * (last - before)
