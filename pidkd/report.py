"""Figures and tables from result frames (``runs.csv``, ``pid.csv``), saved under
``results/<profile>/figures`` (PNG and PDF) and ``results/<profile>/tables`` (CSV and Markdown)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

TEACHER_ORDER = ["trained", "untrained", "noisy"]
METHOD_ORDER = ["baseline", "kd", "vid", "rid", "ted"]


def with_baseline_per_teacher(runs: pd.DataFrame, teachers: list[str] | None = None) -> pd.DataFrame:
    """Repeat the baseline's rows (teacher ``none``) under each teacher kind, so every panel or
    column that compares methods under a teacher shows the student trained alone beside them."""
    teachers = teachers or [t for t in TEACHER_ORDER if t in set(runs["teacher"])]
    baseline = runs[runs["teacher"] == "none"]
    copies = [baseline.assign(teacher=t) for t in teachers]
    return pd.concat([runs[runs["teacher"] != "none"], *copies], ignore_index=True)


def final_epochs(runs: pd.DataFrame) -> pd.DataFrame:
    """The last epoch's row of every run."""
    return runs.sort_values("epoch").groupby("key", sort=False).tail(1)


def accuracy_table(runs: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Final test accuracy (%) as 'mean ± std (n)' over seeds: methods x teacher kinds."""
    final = with_baseline_per_teacher(final_epochs(runs))
    stats = final.groupby(["method", "teacher"])["test_acc"].agg(["mean", "std", "count"]) * [100, 100, 1]
    cells = stats.apply(lambda r: f"{r['mean']:.{decimals}f} ± {r['std']:.{decimals}f} ({int(r['count'])})", axis=1)
    table = cells.unstack("teacher")
    return table.reindex(index=[m for m in METHOD_ORDER if m in table.index],
                         columns=[t for t in TEACHER_ORDER if t in table.columns])


def accuracy_curves(runs: pd.DataFrame, title: str = "") -> plt.Figure:
    """Test accuracy against epoch, one panel per teacher kind, mean and seed spread per method."""
    frame = with_baseline_per_teacher(runs).assign(test_acc=lambda f: 100 * f["test_acc"])
    teachers = [t for t in TEACHER_ORDER if t in set(frame["teacher"])]
    grid = sns.relplot(
        data=frame, x="epoch", y="test_acc", hue="method", col="teacher", kind="line", errorbar="sd",
        hue_order=[m for m in METHOD_ORDER if m in set(frame["method"])], col_order=teachers,
        height=3.2, aspect=1.1,
    )
    grid.set_axis_labels("epoch", "test accuracy (%)").set_titles("{col_name} teacher")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


def pid_curves(pid: pd.DataFrame, terms: tuple[str, ...] = ("red", "uni_t"), title: str = "") -> plt.Figure:
    """PID terms (bits) against epoch: a row per term, a column per teacher kind, a line per method,
    with the shuffled-label control dashed."""
    long = pid.melt(
        id_vars=["teacher", "method", "seed", "epoch", "control"], value_vars=list(terms), var_name="term", value_name="bits"
    ).assign(labels=lambda f: f["control"].map({False: "labels", True: "shuffled labels"}))
    grid = sns.relplot(
        data=long, x="epoch", y="bits", hue="method", style="labels", row="term", col="teacher", kind="line",
        errorbar="sd", hue_order=[m for m in METHOD_ORDER if m in set(long["method"])],
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
    """Final accuracy of each method against the teacher's noise level, the baseline as a band."""
    final = final_epochs(runs).assign(test_acc=lambda f: 100 * f["test_acc"])
    noisy = final[final["teacher"] == "noisy"]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    sns.lineplot(data=noisy, x="noise_sigma", y="test_acc", hue="method", marker="o", errorbar="sd", ax=ax,
                 hue_order=[m for m in METHOD_ORDER if m in set(noisy["method"])])
    base = final[final["method"] == "baseline"]["test_acc"]
    if len(base):
        spread = base.std() if len(base) > 1 else 0.0
        ax.axhspan(base.mean() - spread, base.mean() + spread, color="gray", alpha=0.2, label="baseline ± std")
        ax.axhline(base.mean(), color="gray", lw=1)
    ax.set(xlabel="teacher noise sigma", ylabel="final test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# How far to trust the measure: pid.measure's error on ground-truth cases, from a
# pidkd.synthetic.study frame (one row per setting, repeat, estimator and term).
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


def final_percent(runs: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every run with its test accuracy in percent."""
    return final_epochs(runs).assign(test_acc=lambda f: 100 * f["test_acc"])


def mean_accuracy(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean final test accuracy (%) over seeds: methods x teacher kinds, the baseline in every column."""
    final = with_baseline_per_teacher(final_percent(runs))
    return final.pivot_table(index="method", columns="teacher", values="test_acc", aggfunc="mean")


def noise_table(runs: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Final test accuracy (%) as 'mean ± std' over seeds: methods x teacher noise levels."""
    final = final_percent(runs)
    stats = final.groupby(["method", "noise_sigma"], dropna=False)["test_acc"].agg(["mean", "std"])
    cells = stats.apply(lambda r: f"{r['mean']:.{decimals}f} ± {r['std']:.{decimals}f}", axis=1).unstack("noise_sigma")
    return cells.reindex([m for m in METHOD_ORDER if m in cells.index])


def pid_table(pid: pd.DataFrame, epoch: int) -> pd.DataFrame:
    """Mean PID terms (bits) at ``epoch`` per teacher kind and method, with the shuffled-label
    control's Red and Uni(T\\S) beside them."""
    at = pid[pid["epoch"] == epoch]
    terms = ["red", "uni_t", "uni_s", "syn", "mi_t", "mi_s", "mi_ts"]
    real = at[~at["control"]].groupby(["teacher", "method"])[terms].mean()
    control = at[at["control"]].groupby(["teacher", "method"])[["red", "uni_t"]].mean().add_prefix("control ")
    return real.join(control).round(4)


def _paired(final: pd.DataFrame, teacher: str, method: str, reference: str = "baseline") -> pd.Series:
    """Per-seed differences (percentage points) of ``method`` under ``teacher`` minus ``reference``
    (the baseline has no teacher, so it is the same run for every kind)."""
    def accuracy(name: str) -> pd.Series:
        rows = final[(final["method"] == name) & (final["teacher"].isin([teacher, "none"]))]
        return rows.set_index("seed")["test_acc"]

    return (accuracy(method) - accuracy(reference)).dropna()


def _describe(name: str, values: pd.Series) -> tuple[str, str]:
    return f"{name} {values.mean():+.1f}", f"± {values.std():.1f}"


def claims(
    runs: pd.DataFrame, noise: pd.DataFrame, pid: pd.DataFrame, clear_points: float = 1.0, near_bits: float = 0.1
) -> pd.DataFrame:
    """The paper's claims (a)-(e) checked on a profile's runs, one row each: the numbers, their
    seed spread, and whether the claim holds. Accuracy differences are paired by seed; "clearly"
    means by more than the standard deviation of those differences and by at least
    ``clear_points`` percentage points; "near zero" for a PID term means within ``near_bits`` of
    the same estimate with shuffled labels."""
    final = final_percent(runs)
    rows = []

    def clearly_positive(values: pd.Series) -> bool:
        return values.mean() > max(values.std(), clear_points)

    def add(claim: str, statement: str, parts: list[tuple[str, pd.Series]], holds: bool) -> None:
        described = [_describe(name, values) for name, values in parts]
        rows.append({"claim": claim, "statement": statement, "numbers": "; ".join(d[0] for d in described),
                     "spread": "; ".join(d[1] for d in described), "holds": bool(holds)})

    vid, rid = _paired(final, "trained", "vid"), _paired(final, "trained", "rid")
    add("a", "trained teacher: VID and RID at least the baseline",
        [("VID - baseline", vid), ("RID - baseline", rid)], vid.mean() >= 0 and rid.mean() >= 0)
    vid_u = _paired(final, "untrained", "vid")
    add("b", "untrained teacher: VID clearly below the baseline",
        [("VID - baseline", vid_u)], clearly_positive(-vid_u))
    rid_u, rid_vid = _paired(final, "untrained", "rid"), _paired(final, "untrained", "rid", reference="vid")
    add("c", "untrained teacher: RID near the baseline and clearly above VID",
        [("RID - baseline", rid_u), ("RID - VID", rid_vid)],
        clearly_positive(rid_vid) and abs(rid_u.mean()) < rid_vid.mean())

    noisy = final_percent(noise)
    noisy = noisy[noisy["teacher"] == "noisy"]
    low, high = noisy["noise_sigma"].min(), noisy["noise_sigma"].max()

    def drop(method: str) -> pd.Series:
        at = noisy[noisy["method"] == method].set_index(["noise_sigma", "seed"])["test_acc"]
        return (at.loc[low] - at.loc[high]).dropna()

    vid_drop, rid_drop = drop("vid"), drop("rid")
    add("d", f"noisy teachers: VID worse as the noise grows (sigma {low:g} to {high:g}), RID less so",
        [("VID drop", vid_drop), ("RID drop", rid_drop)],
        clearly_positive(vid_drop) and rid_drop.mean() < vid_drop.mean())

    last = pid[pid["epoch"] == pid["epoch"].max()]
    bits = last.groupby(["teacher", "control", "key"])[["red", "uni_t"]].mean()

    def excess(teacher: str, term: str) -> pd.Series:
        per_run = bits.loc[teacher][term].unstack("control")
        return per_run[False] - per_run[True]

    red_u, uni_u, red_t = excess("untrained", "red"), excess("untrained", "uni_t"), excess("trained", "red")
    mi_ts = last[~last["control"] & (last["teacher"] == "untrained")].groupby("method")["mi_ts"].mean()
    rows.append({
        "claim": "e",
        "statement": f"PID: under the untrained teacher Red and Uni(T\\S) near zero (within {near_bits} bit "
                     f"of shuffled labels) while VID still drives I(T;S) above RID's; under the trained teacher Red above it",
        "numbers": f"untrained Red {red_u.mean():+.3f}, Uni(T\\S) {uni_u.mean():+.3f}, I(T;S) VID {mi_ts['vid']:.3f} "
                   f"vs RID {mi_ts['rid']:.3f}; trained Red {red_t.mean():+.3f} bits",
        "spread": f"± {red_u.std():.3f}; ± {uni_u.std():.3f}; ± {red_t.std():.3f}",
        "holds": bool(red_u.mean() < near_bits and uni_u.mean() < near_bits and mi_ts["vid"] > mi_ts["rid"]
                      and red_t.mean() > near_bits),
    })
    return pd.DataFrame(rows)
