"""Numbers that come from training, checked against a profile's committed reference within
tolerances that follow from their seed spread.

Another machine's CPU computes slightly different training numbers (other vector kernels, other
reduction orders), and training amplifies those last bits: a run there is in effect another draw
of the seed's noise. So a mean over n seeds moves between two machines by about s * sqrt(2 / n),
for seed standard deviation s. Both spreads, the reference's and this run's, are estimates from a
few seeds, so the bound is a two-sample t bound on their pooled spread (or ``floor``, the smallest
change that means anything, e.g. one test example). Exact comparison is left to nbval, for what
does not depend on the machine. docs/reproducibility.md says more.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
from scipy import stats

from ..distill.files import write_atomic

ALPHA = 1 / 150_000
"""The chance that a correct number fails its check: a correct run of the embedded notebooks, which
check about 450 numbers, fails by chance about 0.3% of the time."""


COLUMNS = ["table", "row", "mean", "std", "n", "floor", "verdict", "margin"]
"""A summary row: a mean over ``n`` seeds with their ``std``; for a claim's part also its verdict
and ``margin``, how far its interval's nearer end lies from the claim's threshold."""


def summarise(frame: pd.DataFrame, table: str, by: Sequence[str], value: str, floor: float) -> pd.DataFrame:
    """Mean, seed std and count of ``value`` per group of ``by`` (one row per seed in ``frame``)."""
    stats = frame.groupby(list(by), dropna=False)[value].agg(["mean", "std", "count"]).reset_index()
    rows = stats[list(by)].apply(lambda row: ", ".join(map(str, row)), axis=1) if by else pd.Series([""] * len(stats))
    return pd.DataFrame({"table": table, "row": rows, "mean": stats["mean"], "std": stats["std"].fillna(0.0),
                         "n": stats["count"], "floor": floor, "verdict": "", "margin": math.nan})[COLUMNS]


def summarise_claims(found: pd.DataFrame, table: str, floors: dict[str, float]) -> pd.DataFrame:
    """The parts of :func:`pidkd.study.claims.claims` as summary rows; ``floors`` by unit ("points", "bits")."""
    unit = found["part"].str.extract(r"\((\w+)\)$")[0]
    return pd.DataFrame({"table": table, "row": found["claim"] + ": " + found["part"], "mean": found["mean"],
                         "std": found["std"].fillna(0.0), "n": found["n"], "floor": unit.map(floors),
                         "verdict": found["part_verdict"], "margin": found["margin"]})[COLUMNS]


def critical(df: int) -> float:
    """How many standard errors a correct number may move: the two-sided ``ALPHA`` quantile of
    Student's t with ``df`` degrees of freedom. With five seeds a side (8 degrees) it is 10.3, where
    a known spread would give 4.5: a spread estimated from five seeds is often half the true one."""
    return float(stats.t.ppf(1 - ALPHA / 2, df))


def _pooled(std_ref: float, n_ref: int, std: float, n: int) -> tuple[float, int]:
    """The pooled seed spread of two runs of ``n_ref`` and ``n`` seeds, and its degrees of freedom."""
    df = n_ref + n - 2
    return (math.sqrt(((n_ref - 1) * std_ref**2 + (n - 1) * std**2) / df) if df > 0 else 0.0), df


def tolerance(std_ref: float, n_ref: int, std: float, n: int, floor: float) -> float:
    """How far a mean over ``n`` seeds (spread ``std``) may lie from the reference's mean over
    ``n_ref`` seeds (spread ``std_ref``) when only the machine differs."""
    spread, df = _pooled(std_ref, n_ref, std, n)
    return floor if df < 1 else max(floor, critical(df) * spread * math.sqrt(1 / n_ref + 1 / n))


def edge_tolerance(std_ref: float, n_ref: int, std: float, n: int) -> float:
    """How far the end of a 95% t-interval over ``n_ref`` seeds may move on another machine: its mean
    moves (variance s^2 (1 / n_ref + 1 / n)) and so does its half-width t s / sqrt(n), through s
    (variance about s^2 / (n - 1) between two machines)."""
    spread, df = _pooled(std_ref, n_ref, std, n)
    if df < 1 or n_ref < 2:
        return 0.0
    t = stats.t.ppf(0.975, n_ref - 1)
    return critical(df) * spread * math.sqrt(1 / n_ref + 1 / n + t**2 / (n_ref * (n_ref - 1)))


def compare(current: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``current`` that differ from ``reference`` by more than their tolerance, or that
    one of the two lacks, with what is wrong. A claim's part whose verdict went from holds to
    contradicted or back (its interval moved wholly across its threshold) is always wrong; one that
    went to or from inconclusive is wrong unless the reference's interval ended within its edge
    tolerance of the threshold (a borderline verdict, which another machine may legitimately tip)."""
    merged = current.merge(reference, on=["table", "row"], how="outer", suffixes=("", "_ref"), indicator="side")
    problems = []
    for row in merged.itertuples():
        if row.side == "left_only":
            problems.append((row.table, row.row, "not in the reference"))
        elif row.side == "right_only":
            problems.append((row.table, row.row, "in the reference but not computed"))
        else:
            allowed = tolerance(row.std_ref, int(row.n_ref), row.std, int(row.n), row.floor_ref)
            if not abs(row.mean - row.mean_ref) <= allowed:
                problems.append((row.table, row.row, f"{row.mean:.4g} against {row.mean_ref:.4g} (tolerance {allowed:.2g})"))
            if isinstance(row.verdict_ref, str) and row.verdict_ref and row.verdict != row.verdict_ref:
                crossed = {row.verdict, row.verdict_ref} == {"holds", "contradicted"}
                edge = edge_tolerance(row.std_ref, int(row.n_ref), row.std, int(row.n))
                if crossed or row.margin_ref > max(row.floor_ref, edge):
                    problems.append((row.table, row.row, f"{row.verdict} against {row.verdict_ref}"))
    return pd.DataFrame(problems, columns=["table", "row", "problem"])


@dataclass(frozen=True)
class Check:
    """The outcome of checking one table against the reference; its text is the same on every
    machine as long as every number is within its tolerance."""

    table: str
    checked: int
    problems: pd.DataFrame
    reference: str | None

    def __repr__(self) -> str:
        if self.reference is None:
            return f"{self.table}: {self.checked} numbers recorded; this profile has no committed reference"
        if self.problems.empty:
            return f"{self.table}: {self.checked} numbers, each within its tolerance of the committed reference"
        lines = [f"{self.table}: {len(self.problems)} of {self.checked} numbers differ from the committed reference:"]
        lines += [f"  {p.row}: {p.problem}" for p in self.problems.itertuples()]
        return "\n".join(lines)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"row": str, "verdict": str}, keep_default_na=False, na_values={"margin": [""]})


def reference_file(profile: str) -> Path:
    """Where the committed reference of a shipped profile lives (beside the profile)."""
    return Path(str(resources.files("pidkd.profiles").joinpath(f"{profile}-reference.csv")))


def check(summary: pd.DataFrame, profile: str | None, recorded: Path) -> Check:
    """Record ``summary`` (rows of one table) in ``recorded`` (replacing that table's earlier rows)
    and compare it with the shipped ``profile``'s committed reference, if it has one (None: a
    changed or unshipped profile, which has none)."""
    table = summary["table"].iloc[0]
    earlier = _read(recorded).query("table != @table") if recorded.exists() else None
    recorded.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(recorded, pd.concat([earlier, summary], ignore_index=True).to_csv(index=False))
    path = reference_file(profile) if profile else None
    if path is None or not path.is_file():
        return Check(table, len(summary), summary.iloc[:0], None)
    reference = _read(path).query("table == @table")
    return Check(table, len(summary), compare(summary, reference), path.name)


@dataclass(frozen=True)
class Choice:
    """Whether a profile's committed choice (a weight per method) is the best on this machine's
    numbers, or within the tolerance of the best that another machine's seed noise allows."""

    lines: tuple[str, ...]
    agrees: bool

    def __repr__(self) -> str:
        return "\n".join(self.lines)


def check_choice(stats: pd.DataFrame, committed: dict[str, float], what: str = "weight") -> Choice:
    """``stats``: mean, std and count per (method, option), higher is better; ``committed``: the
    option the profile uses for each method (one that is not among ``stats``' options disagrees). A committed option that is not the best here agrees
    when the best leads it by less than the critical number of standard errors of a
    between-machine difference of the two gaps' means."""
    lines, agrees = [], True
    for method, option in committed.items():
        rows = stats.loc[method]
        best = rows["mean"].idxmax()
        if option not in rows.index:
            agrees = False
            lines.append(f"{method}: the committed {what} {option:g} is not among the candidates here; the best is {best:g}")
            continue
        if option == best:
            lines.append(f"{method}: the committed {what} {option:g} is the best here")
            continue
        mine, top = rows.loc[option], rows.loc[best]
        df = int(mine["count"] + top["count"]) - 2
        allowed = critical(df) * math.sqrt(2 * (mine["std"] ** 2 / mine["count"] + top["std"] ** 2 / top["count"]))
        close = top["mean"] - mine["mean"] <= allowed
        agrees &= close
        lines.append(f"{method}: the committed {what} {option:g} is within its tolerance of the best here"
                     if close else f"{method}: the best {what} here is {best:g}, not the committed {option:g}: "
                     f"{top['mean']:.2f} against {mine['mean']:.2f} (tolerance {allowed:.2f})")
    return Choice(tuple(lines), agrees)
