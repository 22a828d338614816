"""Training-derived numbers against a committed reference: within tolerance passes, a real
regression (a number moved beyond its tolerance, a missing or extra row) fails."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from pidkd.study import reference


def _runs(shift: float = 0.0) -> pd.DataFrame:
    """Five seeds of two methods; the VID numbers moved by ``shift``."""
    rows = [{"method": m, "seed": s, "acc": base + 0.01 * (s - 2) + (shift if m == "vid" else 0.0)}
            for m, base in (("baseline", 0.90), ("vid", 0.93)) for s in range(5)]
    return pd.DataFrame(rows)


def test_tolerance_follows_the_pooled_seed_spread_of_both_runs():
    assert reference.tolerance(0.01, 5, 0.01, 5, floor=0.0005) == pytest.approx(reference.critical(8) * 0.01 * math.sqrt(2 / 5))
    assert reference.tolerance(0.01, 5, 0.03, 5, 0.0005) == pytest.approx(reference.tolerance(math.sqrt(0.0005), 5, math.sqrt(0.0005), 5, 0.0005))
    assert reference.tolerance(0.0, 5, 0.0, 5, floor=0.0005) == 0.0005  # identical seeds: the floor


def test_the_critical_value_allows_for_spreads_estimated_from_few_seeds():
    # a correct number fails with chance ALPHA: Student's t, wider than the normal 4.5 at 8 degrees
    assert reference.critical(8) == pytest.approx(10.33, abs=0.01)
    assert reference.critical(10_000) == pytest.approx(4.50, abs=0.01)


def test_a_number_within_its_tolerance_passes_and_one_beyond_fails(tmp_path, monkeypatch):
    committed = reference.summarise(_runs(), "final", ["method"], "acc", floor=0.0005)
    path = tmp_path / "embedded-reference.csv"
    committed.to_csv(path, index=False)
    monkeypatch.setattr(reference, "reference_file", lambda profile: path)
    spread = committed["std"].iloc[1]  # shifting every seed keeps the spread
    allowed = reference.tolerance(spread, 5, spread, 5, 0.0005)
    near = reference.check(reference.summarise(_runs(0.9 * allowed), "final", ["method"], "acc", 0.0005), "embedded",
                           tmp_path / "checked.csv")
    assert near.problems.empty and repr(near) == "final: 2 numbers, each within its tolerance of the committed reference"
    far = reference.check(reference.summarise(_runs(1.1 * allowed), "final", ["method"], "acc", 0.0005), "embedded",
                          tmp_path / "checked.csv")
    assert list(far.problems["row"]) == ["vid"] and "differ from the committed reference" in repr(far)
    assert pd.read_csv(tmp_path / "checked.csv")["table"].tolist() == ["final", "final"]  # rows replaced, not added


def test_a_row_missing_on_either_side_is_a_problem():
    committed = reference.summarise(_runs(), "final", ["method"], "acc", floor=0.0005)
    fewer = committed.iloc[:1]
    assert reference.compare(fewer, committed)["problem"].tolist() == ["in the reference but not computed"]
    assert reference.compare(committed, fewer)["problem"].tolist() == ["not in the reference"]


def test_a_profile_without_a_reference_only_records(tmp_path):
    check = reference.check(reference.summarise(_runs(), "final", ["method"], "acc", 0.0005), "mine", tmp_path / "c.csv")
    assert repr(check) == "final: 2 numbers recorded; this profile has no committed reference"


def test_a_claim_whose_verdict_flips_fails_unless_it_was_borderline():
    from test_claims import PAPER_LIKE, _final, _noise, _pid, _teachers

    from pidkd.study import claims

    committed = reference.summarise_claims(claims.claims(_final(PAPER_LIKE), _noise((80.0, 60.0), (80.0, 79.0)), _pid(),
                                                         _teachers()), "claims", {"points": 0.05, "bits": 0.002})
    assert (committed["verdict"] == "holds").all()
    flipped = {**PAPER_LIKE, ("untrained", "vid"): 75.0}  # VID now above the baseline: (b) is contradicted
    now = reference.summarise_claims(claims.claims(_final(flipped), _noise((80.0, 60.0), (80.0, 79.0)), _pid(), _teachers()),
                                     "claims", {"points": 0.05, "bits": 0.002})
    problems = reference.compare(now, committed)
    assert "b: VID - baseline (points): contradicted against holds" in [f"{p.row}: {p.problem}" for p in problems.itertuples()]
    borderline = committed.assign(margin=0.0)  # a reference interval that ended at its threshold...
    assert "b: VID - baseline (points): contradicted against holds" in [  # ...still may not cross it
        f"{p.row}: {p.problem}" for p in reference.compare(now, borderline).itertuples()]
    tipped = now.assign(verdict=now["verdict"].replace("contradicted", "inconclusive"))
    assert not reference.compare(tipped, borderline)["problem"].str.contains("against holds").any()  # but may tip


def test_a_committed_choice_agrees_when_it_is_best_or_within_the_seed_noise_of_the_best():
    stats = pd.DataFrame({"mean": [95.0, 95.4, 90.0], "std": [0.5, 0.5, 0.5], "count": [5, 5, 5]},
                         index=pd.MultiIndex.from_tuples([("vid", 10.0), ("vid", 100.0), ("vid", 1.0)], names=["method", "weight"]))
    assert repr(reference.check_choice(stats, {"vid": 100.0})) == "vid: the committed weight 100 is the best here"
    near = reference.check_choice(stats, {"vid": 10.0})
    assert near.agrees and "within its tolerance" in repr(near)
    far = reference.check_choice(stats, {"vid": 1.0})
    assert not far.agrees and "the best weight here is 100, not the committed 1" in repr(far)
    missing = reference.check_choice(stats.drop(("vid", 1.0)), {"vid": 1.0})  # e.g. it changes nothing measurable here
    assert not missing.agrees and "not among the candidates here; the best is 100" in repr(missing)
