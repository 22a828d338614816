"""Tables, figures and the claims check, on small synthetic result frames."""
from __future__ import annotations

import itertools

import matplotlib
import pandas as pd

from pidkd import report

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


def _noise(vid: tuple[float, float], rid: tuple[float, float]) -> pd.DataFrame:
    return pd.concat([_runs({("noisy", "vid"): v, ("noisy", "rid"): r}, sigma=s) for s, v, r in zip((0.5, 2.0), vid, rid)])


def _pid(untrained_red: float, trained_red: float, vid_ts: float = 0.8, rid_ts: float = 0.3) -> pd.DataFrame:
    rows = []
    for teacher, red in (("untrained", untrained_red), ("trained", trained_red)):
        for (method, mi_ts), seed, control in itertools.product((("vid", vid_ts), ("rid", rid_ts)), SEEDS, (False, True)):
            bits = 0.02 if control else red
            rows.append({"teacher": teacher, "method": method, "key": f"{teacher}{method}{seed}", "seed": seed, "epoch": 5,
                         "control": control, "red": bits, "uni_t": 0.02, "uni_s": 0.0, "syn": 0.0, "mi_t": bits,
                         "mi_s": bits, "mi_ts": mi_ts})
    return pd.DataFrame(rows)


def test_claims_hold_on_results_shaped_like_the_papers():
    table = report.claims(_runs(PAPER_LIKE), _noise(vid=(0.90, 0.84), rid=(0.90, 0.89)), _pid(0.03, 0.8))
    assert list(table["claim"]) == list("abcde")
    assert table["holds"].all(), table
    assert table.loc[0, "numbers"] == "VID - baseline +3.0; RID - baseline +2.0"
    assert "I(T;S) VID 0.800 vs RID 0.300" in table.loc[4, "numbers"]


def test_the_pid_claim_needs_vid_to_drive_i_ts_above_rids():
    table = report.claims(_runs(PAPER_LIKE), _noise(vid=(0.90, 0.84), rid=(0.90, 0.89)), _pid(0.03, 0.8, vid_ts=0.2))
    assert not table.set_index("claim").loc["e", "holds"]


def test_each_claim_fails_when_its_numbers_say_so():
    flipped = {**PAPER_LIKE, ("trained", "vid"): 0.88, ("untrained", "vid"): 0.899, ("untrained", "rid"): 0.80}
    table = report.claims(_runs(flipped), _noise(vid=(0.84, 0.90), rid=(0.90, 0.89)), _pid(0.5, 0.05, vid_ts=0.2)).set_index("claim")
    assert not table["holds"].any(), table


def test_a_difference_within_the_seed_spread_is_not_clear():
    runs = _runs({**PAPER_LIKE, ("untrained", "vid"): 0.88})  # 2 points below the baseline on average
    spread = (runs["teacher"] == "untrained") & (runs["method"] == "vid") & (runs["epoch"] == 2)
    runs.loc[spread, "test_acc"] += runs.loc[spread, "seed"].map({0: 0.04, 1: -0.04, 2: 0.0})
    table = report.claims(runs, _noise((0.9, 0.84), (0.9, 0.89)), _pid(0.03, 0.8)).set_index("claim")
    assert table.loc["b", "numbers"] == "VID - baseline -2.0" and not table.loc["b", "holds"]


def test_accuracy_table_repeats_the_baseline_under_each_teacher():
    table = report.accuracy_table(_runs(PAPER_LIKE))
    assert list(table.columns) == ["trained", "untrained"] and list(table.index) == ["baseline", "vid", "rid"]
    assert table.loc["baseline", "trained"] == table.loc["baseline", "untrained"] == "90.0 ± 0.4 (3)"
    assert table.loc["vid", "untrained"] == "80.0 ± 0.4 (3)"


def test_figures_and_tables_are_saved_in_both_formats(tmp_path):
    runs = _runs(PAPER_LIKE)
    paths = report.save_figure(report.accuracy_curves(runs), "curves", tmp_path)
    paths += report.save_table(report.accuracy_table(runs), "accuracy", tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "figures/curves.png", "figures/curves.pdf", "tables/accuracy.csv", "tables/accuracy.md"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert "± 0.4" in (tmp_path / "tables" / "accuracy.md").read_text()
