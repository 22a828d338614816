"""The paper's claims (docs/method.md, "The claims") checked on a profile's runs. Each claim rests
on parts, each a per-seed difference that the claim says lies above (or below) a threshold; a part
is judged from the 95% t-interval of its mean over seeds (the differences are paired by seed):

* **holds** when the whole interval lies on the claimed side of the threshold,
* **contradicted** when it lies wholly on the other side,
* **inconclusive** when it contains the threshold.

A claim holds when every part holds, is contradicted when any part is, and is inconclusive otherwise.
Thresholds are fixed here, before any result, and relative where the paper's words are: accuracy
differences against 0 points; "next to nothing" about the label against a tenth
(``NEAR_FRACTION``) of what the trained teacher holds, both in excess of the same estimate with
shuffled labels. Premises (what the teacher holds: claim (e)) are judged apart from the explanation
(what VID and RID do to the student: claim (f)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats

LEVEL = 0.95
NEAR_FRACTION = 0.1
"""Information about the label counts as next to nothing when its excess over the shuffled-label
estimate is under this fraction of the trained teacher's (the same layer, the same seed)."""

HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "holds", "contradicted", "inconclusive", "not run"


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` paired seeds with its 95% t-interval and the seeds' standard deviation."""

    mean: float
    low: float
    high: float
    std: float
    n: int


def interval(values: pd.Series) -> Interval:
    """The 95% t-interval of the mean of ``values`` (one per seed); infinite with fewer than two."""
    values = values.dropna()
    n, mean = len(values), float(values.mean()) if len(values) else math.nan
    if n < 2:
        return Interval(mean, -math.inf, math.inf, math.nan, n)
    std = float(values.std())
    half = stats.t.ppf((1 + LEVEL) / 2, n - 1) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, std, n)


def judge(found: Interval, above: bool, threshold: float = 0.0) -> str:
    """A part's verdict: is the interval on the claimed side of ``threshold``?"""
    if (found.low > threshold) if above else (found.high < threshold):
        return HOLDS
    if (found.high < threshold) if above else (found.low > threshold):
        return CONTRADICTED
    return INCONCLUSIVE


def margin(found: Interval, threshold: float = 0.0) -> float:
    """How far the interval's nearer end lies from the threshold: how much the numbers would have
    to move for the verdict to change."""
    return min(abs(found.low - threshold), abs(found.high - threshold))


def overall(verdicts: list[str]) -> str:
    """A claim's verdict from its parts': contradicted if any part is, not run if any part's runs are
    not in the profile, holds if every part holds, inconclusive otherwise."""
    for verdict in (CONTRADICTED, NOT_RUN):
        if verdict in verdicts:
            return verdict
    return HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def _accuracy(final: pd.DataFrame, teacher: str, method: str) -> pd.Series:
    """Final test accuracy (points) per seed of ``method`` under ``teacher`` (the baseline, which has
    no teacher, is the same run under every kind)."""
    rows = final[(final["method"] == method) & final["teacher"].isin([teacher, "none"])]
    return rows.set_index("seed")["test_acc"]


def _pid(pid: pd.DataFrame, teacher: str, method: str, term: str, excess: bool = False) -> pd.Series:
    """A PID term (bits) per seed at the last measured epoch, optionally in excess of the same
    estimate with shuffled labels."""
    rows = pid[(pid["teacher"] == teacher) & (pid["method"] == method)]
    real = rows[~rows["control"]].set_index("seed")[term]
    return real - rows[rows["control"]].set_index("seed")[term] if excess else real


def claims(final: pd.DataFrame, noise: pd.DataFrame | None = None, pid: pd.DataFrame | None = None,
           teachers: pd.DataFrame | None = None, which: str = "abcdef") -> pd.DataFrame:
    """One row per part of each of the claims ``which`` (a)-(f): its per-seed mean, 95% interval,
    verdict, and the claim's verdict; a part whose runs the profile does not have is ``not run``.

    ``final`` and ``noise``: the last epoch of each run of the main grid and of the noise sweep
    (``test_acc`` in percent; None: no noise sweep); ``pid``: PID rows of the last distilled layer at
    the last measured epoch, baselines measured against each teacher too; ``teachers``: I(Y;T) of
    each teacher seed's last layer (columns ``kind``, ``seed``, ``mi``, ``control``); the last two
    are needed for (e) and (f) only."""
    acc = lambda teacher, method: _accuracy(final, teacher, method)  # noqa: E731
    noise = final.iloc[:0] if noise is None else noise
    sigmas = sorted(noise.loc[noise["teacher"] == "noisy", "noise_sigma"].unique())
    low, high = (sigmas[0], sigmas[-1]) if sigmas else (math.nan, math.nan)

    def drop(method: str) -> pd.Series:
        at = noise[(noise["method"] == method) & (noise["teacher"] == "noisy")].set_index(["noise_sigma", "seed"])["test_acc"]
        return at.loc[low] - at.loc[high] if sigmas else pd.Series(dtype=float)

    parts = {
        "a": ("trained teacher: VID and RID both beat the baseline", lambda: [
            ("VID - baseline (points)", acc("trained", "vid") - acc("trained", "baseline"), True, 0.0),
            ("RID - baseline (points)", acc("trained", "rid") - acc("trained", "baseline"), True, 0.0)]),
        "b": ("untrained teacher: VID below the baseline", lambda: [
            ("VID - baseline (points)", acc("untrained", "vid") - acc("untrained", "baseline"), False, 0.0)]),
        "c": ("untrained teacher: RID above VID, and nearer the baseline than VID", lambda: [
            ("RID - VID (points)", acc("untrained", "rid") - acc("untrained", "vid"), True, 0.0),
            ("RID - (baseline + VID) / 2 (points)",
             acc("untrained", "rid") - (acc("untrained", "baseline") + acc("untrained", "vid")) / 2, True, 0.0)]),
        "d": (f"noisy teachers: VID worse as the noise grows (sigma {low:g} to {high:g}), RID less so", lambda: [
            ("VID drop (points)", drop("vid"), True, 0.0),
            ("VID drop - RID drop (points)", drop("vid") - drop("rid"), True, 0.0)]),
    }
    if pid is not None and teachers is not None:
        held = teachers.set_index(["kind", "seed", "control"])["mi"].unstack("control").reindex(columns=[False, True])
        excess = held[False] - held[True]
        tenth = NEAR_FRACTION * excess.xs("trained", level="kind") if "trained" in excess.index.get_level_values("kind") \
            else pd.Series(dtype=float)
        untrained_held = excess.xs("untrained", level="kind") if "untrained" in excess.index.get_level_values("kind") \
            else pd.Series(dtype=float)
        near = f"under {NEAR_FRACTION:g} of the trained teacher's I(Y;T), both above shuffled labels"
        parts["e"] = (f"premise: the untrained teacher holds next to nothing about Y ({near})", lambda: [
            ("untrained I(Y;T) - shuffled - its tenth of trained (bits)", untrained_held - tenth, False, 0.0)])
        parts["f"] = ("explanation, untrained teacher: VID's student shares next to nothing about Y with it, while VID "
                      "drives I(T;S) above RID's and keeps I(Y;S) below the baseline's", lambda: [
            ("VID's Red - shuffled - a tenth of trained I(Y;T) (bits)",
             _pid(pid, "untrained", "vid", "red", excess=True) - tenth, False, 0.0),
            ("VID's I(T;S) - RID's (bits)", _pid(pid, "untrained", "vid", "mi_ts") - _pid(pid, "untrained", "rid", "mi_ts"),
             True, 0.0),
            ("VID's I(Y;S) - baseline's (bits)",
             _pid(pid, "untrained", "vid", "mi_s") - _pid(pid, "untrained", "baseline", "mi_s"), False, 0.0)])
    rows = []
    for claim in (c for c in which if c in parts):
        statement, claim_parts = parts[claim]
        judged = []
        for name, values, above, threshold in claim_parts():
            found = interval(values)
            judged.append({"claim": claim, "statement": statement, "part": name,
                           "claimed": f"{'>' if above else '<'} {threshold:g}", "mean": found.mean,
                           "low": found.low, "high": found.high, "std": found.std, "n": found.n,
                           "part_verdict": judge(found, above, threshold) if found.n else NOT_RUN,
                           "margin": margin(found, threshold)})
        verdict = overall([j["part_verdict"] for j in judged])
        rows += [{**j, "verdict": verdict} for j in judged]
    return pd.DataFrame(rows)


def table(found: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """The claims as a readable table: a row per part, its mean [95% interval] (n), its verdict and
    the claim's."""
    cells = found.apply(lambda r: f"{r['mean']:+.{decimals}f} [{r['low']:+.{decimals}f}, {r['high']:+.{decimals}f}] "
                                  f"({r['n']})", axis=1)
    shown = found.assign(**{"mean [95% CI] (seeds)": cells})
    return shown[["claim", "part", "claimed", "mean [95% CI] (seeds)", "part_verdict", "verdict"]].set_index(["claim", "part"])
