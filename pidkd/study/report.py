"""Figures and tables from result frames (``runs.csv``, ``pid.csv``), saved under
``results/<profile>/figures`` (PNG and PDF) and ``results/<profile>/tables`` (CSV and Markdown)."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .claims import interval
from .results import final_epochs, final_percent

TEACHER_ORDER = ["trained", "untrained", "noisy"]
METHOD_ORDER = ["baseline", "kd", "vid", "rid", "ted"]


def with_baseline_per_teacher(runs: pd.DataFrame, teachers: list[str] | None = None) -> pd.DataFrame:
    """Repeat the baseline's rows (teacher ``none``) under each teacher kind, so every panel or
    column that compares methods under a teacher shows the student trained alone beside them."""
    teachers = teachers or [t for t in TEACHER_ORDER if t in set(runs["teacher"])]
    baseline = runs[runs["teacher"] == "none"]
    copies = [baseline.assign(teacher=t) for t in teachers]
    return pd.concat([runs[runs["teacher"] != "none"], *copies], ignore_index=True)


def _cell(mean: float, std: float, count: int, diverged: int, decimals: int) -> str:
    """'mean ± std (n)' over seeds (no spread for one seed), and how many of the runs diverged."""
    spread = f" ± {std:.{decimals}f}" if count > 1 else ""
    return f"{mean:.{decimals}f}{spread} ({count})" + (f", {diverged} diverged" if diverged else "")


def _diverged(runs: pd.DataFrame) -> pd.Series:
    """Whether each row's run diverged (its last row names what became non-finite)."""
    return runs["diverged"].notna() if "diverged" in runs else pd.Series(False, index=runs.index)


def accuracy_table(runs: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Final test accuracy (%) as 'mean ± std (n)' over seeds, with diverged runs counted: methods x
    teacher kinds."""
    final = with_baseline_per_teacher(final_epochs(runs)).assign(diverged=_diverged)
    stats = final.groupby(["method", "teacher"]).agg(mean=("test_acc", "mean"), std=("test_acc", "std"),
                                                     count=("test_acc", "count"), diverged=("diverged", "sum"))
    cells = stats.apply(lambda r: _cell(100 * r["mean"], 100 * r["std"], int(r["count"]), int(r["diverged"]), decimals),
                        axis=1)
    table = cells.unstack("teacher")
    return table.reindex(index=[m for m in METHOD_ORDER if m in table.index],
                         columns=[t for t in TEACHER_ORDER if t in table.columns])


def accuracy_curves(runs: pd.DataFrame, title: str = "") -> plt.Figure:
    """Test accuracy against epoch, one panel per teacher kind, a line per method: the mean over seeds
    with its 95% confidence band."""
    frame = with_baseline_per_teacher(runs).assign(test_acc=lambda f: 100 * f["test_acc"])
    teachers = [t for t in TEACHER_ORDER if t in set(frame["teacher"])]
    grid = sns.relplot(
        data=frame.dropna(subset=["test_acc"]), x="epoch", y="test_acc", hue="method", col="teacher", kind="line",
        errorbar=("ci", 95), hue_order=[m for m in METHOD_ORDER if m in set(frame["method"])], col_order=teachers,
        height=3.2, aspect=1.1, marker="o", markersize=3,  # a single evaluated epoch still shows
    )
    grid.set_axis_labels("epoch", "test accuracy (%)").set_titles("{col_name} teacher")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


def pid_curves(pid: pd.DataFrame, terms: tuple[str, ...] = ("red", "uni_t"), title: str = "") -> plt.Figure:
    """PID terms (bits) against epoch: a row per term, a column per teacher kind, a line per method
    (mean and 95% band over seeds), with the shuffled-label control dashed."""
    long = pid.melt(
        id_vars=["teacher", "method", "seed", "epoch", "control"], value_vars=list(terms), var_name="term", value_name="bits"
    ).assign(labels=lambda f: f["control"].map({False: "labels", True: "shuffled labels"}))
    grid = sns.relplot(
        data=long, x="epoch", y="bits", hue="method", style="labels", row="term", col="teacher", kind="line",
        errorbar=("ci", 95), hue_order=[m for m in METHOD_ORDER if m in set(long["method"])],
        col_order=[t for t in TEACHER_ORDER if t in set(long["teacher"])], style_order=["labels", "shuffled labels"],
        height=2.8, aspect=1.2, facet_kws={"sharey": "row"},
    )
    grid.set_titles("{row_name} | {col_name} teacher")
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid.figure


def stacked_information(pid: pd.DataFrame, epoch: int) -> plt.Figure:
    """I(Y; T) and I(Y; S) at one epoch drawn as stacked redundant + unique parts, as in the paper."""
    at = pid[(pid["epoch"] == epoch) & ~pid["control"]]
    means = at.groupby(["teacher", "method"])[["red", "uni_t", "uni_s"]].mean().reset_index()
    teachers = [t for t in TEACHER_ORDER if t in set(means["teacher"])]
    fig, axes = plt.subplots(1, len(teachers), figsize=(3.6 * len(teachers), 3.2), sharey=True, squeeze=False)
    for ax, teacher in zip(axes[0], teachers):
        rows = means[means["teacher"] == teacher].set_index("method")
        rows = rows.reindex([m for m in METHOD_ORDER if m in rows.index])
        labels = [f"{m}\nI(Y;T)" for m in rows.index] + [f"{m}\nI(Y;S)" for m in rows.index]
        red = list(rows["red"]) * 2
        unique = list(rows["uni_t"]) + list(rows["uni_s"])
        ax.bar(labels, red, label="Red(Y: T, S)", color="tab:blue")
        ax.bar(labels, unique, bottom=red, label="unique part", color="tab:orange")
        ax.set_title(f"{teacher} teacher, epoch {epoch}")
        ax.tick_params(axis="x", labelsize=7)
    axes[0][0].set_ylabel("bits")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def noise_curve(runs: pd.DataFrame) -> plt.Figure:
    """Final accuracy of each method against the teacher's noise level (mean and 95% band over seeds),
    the baseline's 95% interval as a band."""
    final = final_percent(runs)
    noisy = final[final["teacher"] == "noisy"]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    sns.lineplot(data=noisy, x="noise_sigma", y="test_acc", hue="method", marker="o", errorbar=("ci", 95), ax=ax,
                 hue_order=[m for m in METHOD_ORDER if m in set(noisy["method"])])
    base = final[final["method"] == "baseline"]["test_acc"]
    if len(base) > 1:
        ax.axhspan(*interval_of(base), color="gray", alpha=0.2, label="baseline (95% CI)")
        ax.axhline(base.mean(), color="gray", lw=1)
    ax.set(xlabel="teacher noise sigma", ylabel="final test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# How far to trust the measure: pid.measure's error on ground-truth cases, from a
# pidkd.study.trust.study frame (one row per setting, repeat, estimator and term).
STUDY_SETTINGS = ["case", "mapping", "n", "noise", "n_components", "n_clusters", "estimator", "repeat"]


def worst_part_error(study: pd.DataFrame) -> pd.DataFrame:
    """The largest |error| (bits) over Red, Uni(T\\S), Uni(S\\T) and Syn, one row per setting and repeat:
    every part of such a measurement is within that many bits of the truth."""
    settings = [c for c in STUDY_SETTINGS if c in study.columns]
    worst = study.assign(error=study["error"].abs()).groupby(settings, sort=False)["error"].max()
    return worst.rename("worst error").reset_index()


def measure_error_curves(
    study: pd.DataFrame, hue: str = "n_clusters", estimator: str | None = "plug-in", title: str = ""
) -> plt.Figure:
    """Worst-part error against the sample count, a panel per case and a line per ``hue`` value (mean
    and spread over repeats and any other setting left in ``study``) for ``estimator`` (None: both,
    the control-subtracted one dashed); a dotted line at 0.1 bits."""
    worst = worst_part_error(study)
    if estimator is not None:
        worst = worst[worst["estimator"] == estimator]
    grid = sns.relplot(
        data=worst, x="n", y="worst error", hue=hue, style="estimator" if estimator is None else None,
        col="case", kind="line", marker="o", errorbar="sd", palette="viridis", col_wrap=min(5, worst["case"].nunique()),
        height=2.8, aspect=0.95,
    )
    sizes = sorted(worst["n"].unique())
    grid.set(xscale="log", xticks=sizes, xticklabels=[f"{n:,}" for n in sizes])
    grid.set_axis_labels("examples n", "worst error over parts (bits)").set_titles("{col_name}")
    for ax in grid.axes.flat:
        ax.minorticks_off()
        ax.axhline(0.1, color="gray", lw=0.8, ls=":")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


def measure_error_table(
    study: pd.DataFrame, rows: tuple[str, ...] = ("case", "n"), columns: str | list[str] = "n_clusters",
    estimator: str | None = "plug-in", decimals: int = 2,
) -> pd.DataFrame:
    """Mean worst-part error (bits) of ``estimator`` (None: both, e.g. as ``columns``), ``rows`` x
    ``columns``, averaged over repeats and any other setting left in ``study``."""
    worst = worst_part_error(study)
    if estimator is not None:
        worst = worst[worst["estimator"] == estimator]
    return worst.pivot_table(index=list(rows), columns=columns, values="worst error", aggfunc="mean").round(decimals)


def save_figure(fig: plt.Figure, name: str, folder: Path) -> list[Path]:
    """Write ``fig`` as PNG and PDF under ``folder/figures``."""
    out = folder / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", dpi=150)
    return paths


def save_table(table: pd.DataFrame, name: str, folder: Path) -> list[Path]:
    """Write ``table`` as CSV and Markdown under ``folder/tables``."""
    out = folder / "tables"
    out.mkdir(parents=True, exist_ok=True)
    csv, markdown = out / f"{name}.csv", out / f"{name}.md"
    table.to_csv(csv)
    markdown.write_text(table.to_markdown() + "\n")
    return [csv, markdown]


def mean_accuracy(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean final test accuracy (%) over seeds: methods x teacher kinds, the baseline in every column."""
    final = with_baseline_per_teacher(final_percent(runs))
    return final.pivot_table(index="method", columns="teacher", values="test_acc", aggfunc="mean")


def noise_table(runs: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Final test accuracy (%) as 'mean ± std (n)' over seeds, with diverged runs counted: methods x
    teacher noise levels."""
    final = final_percent(runs).assign(diverged=_diverged)
    stats = final.groupby(["method", "noise_sigma"], dropna=False).agg(
        mean=("test_acc", "mean"), std=("test_acc", "std"), count=("test_acc", "count"), diverged=("diverged", "sum"))
    cells = stats.apply(lambda r: _cell(r["mean"], r["std"], int(r["count"]), int(r["diverged"]), decimals),
                        axis=1).unstack("noise_sigma")
    return cells.reindex([m for m in METHOD_ORDER if m in cells.index])


def pid_table(pid: pd.DataFrame, epoch: int) -> pd.DataFrame:
    """Mean PID terms (bits) at ``epoch`` per teacher kind and method, with the shuffled-label
    control's Red and Uni(T\\S) beside them."""
    at = pid[pid["epoch"] == epoch]
    terms = ["red", "uni_t", "uni_s", "syn", "mi_t", "mi_s", "mi_ts"]
    real = at[~at["control"]].groupby(["teacher", "method"])[terms].mean()
    control = at[at["control"]].groupby(["teacher", "method"])[["red", "uni_t"]].mean().add_prefix("control ")
    return real.join(control).round(4)


def weight_curves(sweep: pd.DataFrame, chosen: dict[str, float] | None = None) -> plt.Figure:
    """Final test accuracy against distillation weight, a panel per teacher kind, a line per method
    with its 95% confidence band over seeds; the baseline as a band; chosen weights marked."""
    final = final_percent(sweep)
    methods = final[final["method"] != "baseline"]
    teachers = [t for t in TEACHER_ORDER if t in set(methods["teacher"])]
    base = final[final["method"] == "baseline"]["test_acc"]
    fig, axes = plt.subplots(1, len(teachers), figsize=(4.2 * len(teachers), 3.4), sharey=True, squeeze=False)
    for ax, teacher in zip(axes[0], teachers):
        sns.lineplot(data=methods[methods["teacher"] == teacher], x="weight", y="test_acc", hue="method", marker="o",
                     errorbar=("ci", 95), ax=ax, hue_order=[m for m in METHOD_ORDER if m in set(methods["method"])])
        ax.axhspan(*interval_of(base), color="gray", alpha=0.2, label="baseline (95% CI)")
        for method, weight in (chosen or {}).items():
            ax.axvline(weight, color=sns.color_palette()[METHOD_ORDER.index(method) - 1], ls=":", lw=1)
        ax.set(xscale="log", xlabel="distillation weight", ylabel="final test accuracy (%)", title=f"{teacher} teacher")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def trade_off_figure(table: pd.DataFrame, marked: dict[str, dict[str, float]] | None = None) -> plt.Figure:
    """Each method's trade-off (:func:`pidkd.study.protocol.trade_off`): its gain under the trained teacher
    against its change under the untrained one, a point per weight (labelled) with 95% intervals on
    both axes, joined from weight 0, the baseline at the origin; the ``marked`` weights (by name)
    ringed."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    palette = dict(zip(METHOD_ORDER, sns.color_palette()))
    for method, rows in table.groupby(level="method", sort=False):
        x, y = rows["trained gain"], rows["untrained change"]
        ax.errorbar(x["mean"], y["mean"], xerr=[x["mean"] - x["low"], x["high"] - x["mean"]],
                    yerr=[y["mean"] - y["low"], y["high"] - y["mean"]], fmt="o", color=palette[method], capsize=2,
                    label=method.upper())
        ax.plot([0, *x["mean"]], [0, *y["mean"]], color=palette[method], lw=1)
        for weight, (gx, gy) in zip(rows.index.get_level_values("weight"), zip(x["mean"], y["mean"])):
            ax.annotate(f"{weight:g}", (gx, gy), textcoords="offset points", xytext=(4, 4), fontsize=7)
        for name, weights in (marked or {}).items():
            if (method, weights.get(method)) in rows.index:
                point = rows.loc[(method, weights[method])]
                ax.scatter(point[("trained gain", "mean")], point[("untrained change", "mean")], s=160,
                           facecolors="none", edgecolors="gray", lw=1)
    ax.axhline(0, color="gray", lw=0.6)
    ax.axvline(0, color="gray", lw=0.6)
    ax.scatter([0], [0], color="black", zorder=3, label="baseline (weight 0)")
    ax.set(xlabel="gain under the trained teacher (test points)", ylabel="change under the untrained teacher (test points)",
           title="each method's trade-off, by weight (rings: the weights the claims use)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def interval_of(values: pd.Series) -> tuple[float, float]:
    """The 95% t-interval of the mean of ``values``."""
    found = interval(values)
    return found.low, found.high


PID_ROWS = {"uni_t": "Uni(Y:T\\S)", "red": "Red(Y:T,S)", "mi_s": "I(Y;S)", "mi_t": "I(Y;T)"}
"""The rows of the authors' PID figure, in their order."""

NATS_PER_BIT = math.log(2)


def pid_figure(pid: pd.DataFrame, units: str = "bits", title: str = "") -> plt.Figure:
    """The authors' PID figure: a row per term (knowledge left to distill, transferred knowledge,
    the student's and the teacher's information about Y), a column per method, the trained and
    the untrained teacher as lines with 95% bands over seeds, the shuffled-label estimate dashed."""
    scale = NATS_PER_BIT if units == "nats" else 1.0
    long = pid.melt(id_vars=["teacher", "method", "seed", "epoch", "control"], value_vars=list(PID_ROWS),
                    var_name="term", value_name=units)
    long = long.assign(**{units: long[units] * scale, "term": long["term"].map(PID_ROWS),
                          "labels": long["control"].map({False: "labels", True: "shuffled labels"})})
    grid = sns.relplot(
        data=long, x="epoch", y=units, hue="teacher", style="labels", row="term", col="method", kind="line",
        errorbar=("ci", 95), row_order=list(PID_ROWS.values()), hue_order=[t for t in TEACHER_ORDER if t in set(long["teacher"])],
        col_order=[m for m in METHOD_ORDER if m in set(long["method"])], style_order=["labels", "shuffled labels"],
        height=2.3, aspect=1.15, facet_kws={"sharey": "row", "margin_titles": True},
    )
    grid.set_titles(row_template="{row_name}", col_template="{col_name}")
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid.figure
