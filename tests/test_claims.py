"""The claims: t-intervals over seeds, a verdict per part and per claim, on synthetic results."""
from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest
from scipy import stats

from pidkd.study import claims

SEEDS = range(5)
JITTER = (-0.4, -0.2, 0.0, 0.2, 0.4)


def _final(accuracy: dict[tuple[str, str], float], jitter: float = 1.0, sigma: float = math.nan) -> pd.DataFrame:
    """Final accuracy (points) per (teacher, method, seed), with a per-seed jitter."""
    return pd.DataFrame([{"teacher": t, "method": m, "seed": s, "noise_sigma": sigma, "test_acc": a + jitter * JITTER[s]}
                         for (t, m), a in accuracy.items() for s in SEEDS])


PAPER_LIKE = {("none", "baseline"): 72.0, ("trained", "vid"): 81.0, ("trained", "rid"): 81.0,
              ("untrained", "vid"): 40.0, ("untrained", "rid"): 66.0}


def _noise(vid: tuple[float, float], rid: tuple[float, float]) -> pd.DataFrame:
    return pd.concat([_final({("noisy", "vid"): v, ("noisy", "rid"): r}, sigma=s) for s, v, r in zip((0.5, 4.0), vid, rid)])


def _pid(untrained_red: float = 0.02, vid_ts: float = 0.8, rid_ts: float = 0.3, vid_ys: float = 0.3) -> pd.DataFrame:
    rows = []
    for teacher, method, seed, control in itertools.product(("trained", "untrained"), ("baseline", "vid", "rid"), SEEDS, (False, True)):
        red = 0.01 if control else (untrained_red if teacher == "untrained" else 0.8)
        rows.append({"teacher": teacher, "method": method, "seed": seed, "control": control, "red": red + 0.01 * JITTER[seed],
                     "uni_t": 0.01, "mi_ts": {"vid": vid_ts, "rid": rid_ts}.get(method, 0.2) + 0.01 * JITTER[seed],
                     "mi_s": (vid_ys if method == "vid" else 1.0) + 0.01 * JITTER[seed]})
    return pd.DataFrame(rows)


def _teachers(untrained: float = 0.03, trained: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame([{"kind": k, "seed": s, "control": c, "mi": (0.02 if c else (untrained if k == "untrained" else trained)) + 0.005 * JITTER[s]}
                         for k, s, c in itertools.product(("trained", "untrained"), SEEDS, (False, True))])


def test_the_interval_is_students_t_over_seeds():
    found = claims.interval(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]))
    half = stats.t.ppf(0.975, 4) * math.sqrt(2.5) / math.sqrt(5)
    assert (found.mean, found.n) == (3.0, 5) and found.low == pytest.approx(3 - half) and found.high == pytest.approx(3 + half)
    assert claims.interval(pd.Series([1.0])).low == -math.inf  # one seed says nothing


def test_every_claim_holds_on_results_shaped_like_the_papers():
    found = claims.claims(_final(PAPER_LIKE), _noise(vid=(80.0, 60.0), rid=(80.0, 79.0)), _pid(), _teachers())
    assert list(found.drop_duplicates("claim")["claim"]) == list("abcdef")
    assert (found["verdict"] == claims.HOLDS).all(), found[["part", "part_verdict"]]
    assert found.iloc[0]["mean"] == pytest.approx(9.0)


def test_each_claim_is_contradicted_when_its_numbers_say_the_opposite():
    opposite = {("none", "baseline"): 72.0, ("trained", "vid"): 68.0, ("trained", "rid"): 70.0,
                ("untrained", "vid"): 76.0, ("untrained", "rid"): 60.0}
    found = claims.claims(_final(opposite), _noise(vid=(60.0, 80.0), rid=(80.0, 79.0)), _pid(0.5, vid_ts=0.1, vid_ys=1.5),
                          _teachers(0.8))
    verdicts = found.drop_duplicates("claim").set_index("claim")["verdict"]
    assert (verdicts == claims.CONTRADICTED).all(), found[["part", "part_verdict"]]


def test_a_difference_within_the_seed_noise_is_inconclusive():
    final = _final({**PAPER_LIKE, ("untrained", "vid"): 71.5})
    vid = (final["teacher"] == "untrained") & (final["method"] == "vid")
    final.loc[vid, "test_acc"] += 5.0 * final.loc[vid, "seed"].map(lambda s: JITTER[s])  # noise the pairing cannot cancel
    found = claims.claims(final, _noise((80.0, 60.0), (80.0, 79.0)), _pid(), _teachers())
    b = found[found["claim"] == "b"].iloc[0]
    assert b["low"] < 0 < b["high"] and b["verdict"] == claims.INCONCLUSIVE
    assert b["margin"] == pytest.approx(min(-b["low"], b["high"]))


def test_the_table_shows_each_parts_interval_and_verdicts():
    shown = claims.table(claims.claims(_final(PAPER_LIKE), _noise((80.0, 60.0), (80.0, 79.0)), _pid(), _teachers()))
    assert shown.loc[("a", "VID - baseline (points)"), "mean [95% CI] (seeds)"].startswith("+9.00 [")
    assert shown.loc[("a", "VID - baseline (points)"), "mean [95% CI] (seeds)"].endswith("] (5)")


def test_a_claim_whose_runs_the_profile_lacks_is_not_run():
    """`quick` has no noisy teacher and no noise sweep: claim (d) is not run, the others are judged."""
    without_rid = {key: value for key, value in PAPER_LIKE.items() if key[1] != "rid"}
    found = claims.claims(_final(without_rid), None, _pid(), _teachers()).drop_duplicates("claim").set_index("claim")
    assert found.loc["d", "verdict"] == claims.NOT_RUN and found.loc["b", "verdict"] == claims.HOLDS
    assert found.loc["a", "verdict"] == claims.NOT_RUN  # VID's part holds, RID's is not run


def test_next_to_nothing_is_judged_against_a_tenth_of_what_the_trained_teacher_holds():
    """0.15 bits above shuffled labels is next to nothing beside a trained teacher's 2 bits, not beside 1 bit."""
    found = {trained: claims.claims(_final(PAPER_LIKE), None, _pid(), _teachers(0.17, trained)).set_index("claim")
             for trained in (2.02, 1.02)}
    assert found[2.02].loc["e", "verdict"] == claims.HOLDS and found[1.02].loc["e", "verdict"] == claims.CONTRADICTED
    assert found[2.02].loc["e", "mean"] == pytest.approx(0.15 - 0.2)


def test_the_premise_and_the_explanation_are_judged_apart_and_claims_can_be_chosen():
    found = claims.claims(_final(PAPER_LIKE), None, _pid(vid_ts=0.1), _teachers())
    verdicts = found.drop_duplicates("claim").set_index("claim")["verdict"]
    assert verdicts["e"] == claims.HOLDS and verdicts["f"] == claims.CONTRADICTED  # VID's I(T;S) below RID's
    assert list(claims.claims(_final(PAPER_LIKE), which="abc").drop_duplicates("claim")["claim"]) == list("abc")
