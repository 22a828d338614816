"""The study's effects and their check against a many-seed reference: what makes it fail, and what must not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pidkd.errors import StudyCheckFailed
from pidkd.study import effects

MEANS = {("none", "baseline"): 88.0, ("trained", "vid"): 95.0, ("trained", "rid"): 91.0, ("untrained", "vid"): 36.0,
         ("untrained", "rid"): 80.0, ("noisy", "vid"): 94.0, ("noisy", "rid"): 89.0}


def _final(seeds: range, spread: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Final test accuracies (points) of every run the effects read, a normal spread around MEANS."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"teacher": t, "method": m, "seed": s, "test_acc": mean + spread * rng.standard_normal()}
                         for (t, m), mean in MEANS.items() for s in seeds])


def _shifted(final: pd.DataFrame, run: tuple[str, str], points: float) -> pd.DataFrame:
    rows = (final["teacher"] == run[0]) & (final["method"] == run[1])
    return final.assign(test_acc=final["test_acc"].where(~rows, final["test_acc"] + points))


REFERENCE = effects.summary(effects.per_seed(_final(range(20), spread=0.5)))


def test_effects_are_paired_by_seed_and_skip_runs_a_study_lacks():
    final = _final(range(3))
    found = effects.per_seed(final).set_index(["effect", "seed"])["value"]
    by_run = final.set_index(["teacher", "method", "seed"])["test_acc"]
    assert found[("trained RID - baseline", 2)] == pytest.approx(by_run[("trained", "rid", 2)] - by_run[("none", "baseline", 2)])
    assert len(found) == 3 * len(effects.EFFECTS)
    without_noisy = effects.per_seed(final[final["teacher"] != "noisy"])
    assert not without_noisy["effect"].str.startswith("noisy").any() and without_noisy["effect"].nunique() == 13


def test_a_study_from_the_references_own_seeds_passes_and_a_two_point_drop_of_trained_rid_raises_naming_it():
    first = _final(range(20), spread=0.5)[lambda f: f["seed"] < 5]
    assert not effects.check(effects.summary(effects.per_seed(first)), REFERENCE, "the test's reference")["fails"].any()
    dropped = effects.summary(effects.per_seed(_shifted(first, ("trained", "rid"), -2.0)))
    with pytest.raises(StudyCheckFailed, match=r"^trained RID: \+\d+\.\d\d points over 5 seeds, not within \d\.\d\d of the "
                                                r"reference's \+91\.\d\d \(20 seeds, sd \d\.\d\d; the test's reference\)"):
        effects.check(dropped, REFERENCE, "the test's reference")


def test_a_collapse_may_deepen_but_must_not_fade():
    base = _final(range(20), spread=0.5)[lambda f: f["seed"] < 5]
    deeper = effects.compare(effects.summary(effects.per_seed(_shifted(base, ("untrained", "vid"), -10.0))), REFERENCE)
    faded = effects.compare(effects.summary(effects.per_seed(_shifted(base, ("untrained", "vid"), +10.0))), REFERENCE)
    assert not deeper.loc[["untrained VID", "untrained VID - baseline", "untrained VID - trained VID"], "fails"].any()
    assert faded.loc[["untrained VID", "untrained VID - baseline", "untrained VID - trained VID"], "fails"].all()
    assert deeper.loc["untrained RID - VID", "fails"]  # RID's lead over VID is checked on both sides


def test_the_chance_of_failing_is_small_for_a_correct_run_and_near_one_for_a_large_drop():
    final = _final(range(20), seed=1)
    assert effects.failure_chance(final, n=5, draws=400) <= 0.03
    assert effects.failure_chance(final, n=5, shift={("trained", "rid"): -4.0}, draws=400) >= 0.9
    half = effects.failure_chance(final, n=5, shift={("trained", "rid"): -2.0}, draws=400)
    assert 0.03 < half < 0.9


RUNS = Path(__file__).with_name("study_reference_runs.csv")
"""The reference runs' final test accuracies (tests/study_reference.py --write)."""


def test_the_committed_reference_is_the_summary_of_the_committed_reference_runs():
    final = pd.read_csv(RUNS, comment="#")
    reference = effects.read_reference(effects.reference_file("embedded"))
    assert sorted(final["seed"].unique()) == list(range(20))
    pd.testing.assert_frame_equal(effects.summary(effects.per_seed(final)), reference, check_names=False, check_index_type=False)


def test_what_the_check_catches_on_the_reference_runs_is_what_docs_reproducibility_states():
    """Out of sample: five of the 20 reference seeds against the other 15 (docs/reproducibility.md)."""
    final = pd.read_csv(RUNS, comment="#")
    assert effects.failure_chance(final, 5) == pytest.approx(0.037)  # 74 of 2,000 draws
    assert effects.failure_chance(final, 5, {("trained", "rid"): -2.0}) == pytest.approx(0.2475)
    assert effects.failure_chance(final, 5, {("trained", "vid"): -1.0}) == pytest.approx(0.2405)
