"""Tables and figures from result frames, on small synthetic results."""
from __future__ import annotations

import itertools

import matplotlib
import pandas as pd

from pidkd.study import report

matplotlib.use("Agg")

SEEDS = (0, 1, 2)


def _runs(accuracy: dict[tuple[str, str], float], sigma: float = float("nan"), jitter: float = 0.004) -> pd.DataFrame:
    """Two epochs per (teacher, method, seed); the last epoch's accuracy is ``accuracy`` + a small per-seed jitter."""
    rows = []
    for (teacher, method), seed, epoch in itertools.product(accuracy, SEEDS, (1, 2)):
        final = accuracy[teacher, method] + jitter * (seed - 1)
        rows.append({"dataset": "d", "teacher": teacher, "method": method, "seed": seed, "noise_sigma": sigma,
                     "key": f"{teacher}-{method}-{seed}-{sigma}", "epoch": epoch, "test_acc": final if epoch == 2 else 0.1})
    return pd.DataFrame(rows)


PAPER_LIKE = {("none", "baseline"): 0.90, ("trained", "vid"): 0.93, ("trained", "rid"): 0.92,
              ("untrained", "vid"): 0.80, ("untrained", "rid"): 0.89}


def test_accuracy_table_repeats_the_baseline_under_each_teacher():
    table = report.accuracy_table(_runs(PAPER_LIKE))
    assert list(table.columns) == ["trained", "untrained"] and list(table.index) == ["baseline", "vid", "rid"]
    assert table.loc["baseline", "trained"] == table.loc["baseline", "untrained"] == "90.0 ± 0.4 (3)"
    assert table.loc["vid", "untrained"] == "80.0 ± 0.4 (3)"


def test_accuracy_table_counts_diverged_runs_and_gives_one_seed_no_spread():
    runs = _runs(PAPER_LIKE)
    runs["diverged"] = None
    stopped = (runs["key"] == "untrained-vid-0-nan") & (runs["epoch"] == 2)
    runs.loc[stopped, "diverged"] = "distill_loss"
    table = report.accuracy_table(runs)
    assert table.loc["vid", "untrained"] == "80.0 ± 0.4 (3), 1 diverged" and table.loc["rid", "untrained"] == "89.0 ± 0.4 (3)"
    one = report.accuracy_table(runs[runs["seed"] == 1])
    assert one.loc["vid", "trained"] == "93.0 (1)" and "nan" not in one.to_string()
    sweep = _runs(PAPER_LIKE, sigma=1.0)
    assert report.noise_table(sweep[sweep["seed"] == 1]).loc["baseline", 1.0] == "90.0 (1)"


def test_figures_and_tables_are_saved_in_both_formats(tmp_path):
    runs = _runs(PAPER_LIKE)
    paths = report.save_figure(report.accuracy_curves(runs), "curves", tmp_path)
    paths += report.save_table(report.accuracy_table(runs), "accuracy", tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "figures/curves.png", "figures/curves.pdf", "tables/accuracy.csv", "tables/accuracy.md"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert "± 0.4" in (tmp_path / "tables" / "accuracy.md").read_text()


def test_the_pid_figure_has_the_authors_rows_and_a_column_per_method():
    rows = [{"teacher": t, "method": m, "seed": s, "epoch": e, "control": c, "red": 0.5, "uni_t": 0.2, "mi_s": 0.7, "mi_t": 0.7}
            for t, m, s, e, c in itertools.product(("trained", "untrained"), ("baseline", "vid"), SEEDS, (1, 2), (False, True))]
    fig = report.pid_figure(pd.DataFrame(rows), units="nats")
    assert len(fig.axes) == 4 * 2
    assert fig.axes[0].get_ylabel() == "nats"
