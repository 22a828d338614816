"""Ground-truth cases: their truths in closed form and against the oracle, and their features."""
from __future__ import annotations

import math

import numpy as np
import pytest
from oracle import oracle_pid

from pidkd import synthetic
from pidkd.errors import ConfigError

PARTS = synthetic.TERMS


def channel_mi(n: int, error: float) -> float:
    """I(X; Y) in bits of a symmetric channel on n uniform symbols."""
    return math.log2(n) + (1 - error) * math.log2(1 - error) + error * math.log2(error / (n - 1))


CLOSED_FORM = {
    "label_and_nuisance": (1, 0, 0, 0),
    "nuisance_teacher": (0, 0, 2, 0),
    "xor": (0, 0, 0, 1),
    "ten_classes": (math.log2(5), 1, 0, 0),
}


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_truths_in_closed_form(name):
    truth = synthetic.CASES[name].truth
    assert [getattr(truth, part) for part in PARTS] == pytest.approx(CLOSED_FORM[name], abs=1e-6)


def test_noisy_channels_truth_matches_the_channels_and_the_oracle():
    case = synthetic.CASES["noisy_channels"]
    truth = case.truth
    assert truth.mi_t == pytest.approx(channel_mi(4, 0.1), abs=1e-9)
    assert truth.mi_s == pytest.approx(channel_mi(4, 0.3), abs=1e-9)
    assert [getattr(truth, part) for part in PARTS] == pytest.approx(list(oracle_pid(case.p).values()), abs=1e-5)
    assert min(truth.red, truth.uni_t, truth.syn) > 0.1  # partial redundancy, some of everything


def test_features_are_seeded_and_the_population_is_shared_across_seeds():
    case = synthetic.CASES["noisy_channels"]
    first, again = synthetic.features(case, 300, seed=1), synthetic.features(case, 300, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    other = synthetic.features(case, 300, seed=2)
    assert not np.array_equal(first[0], other[0])
    t, s, y = first
    assert t.shape == (300, 256) and s.shape == (300, 256) and y.shape == (300,)
    # same population: the mean feature of a label is nearly the same in both samples
    centre = lambda x, labels: x[labels == 0].mean(axis=0)  # noqa: E731
    big_a, big_b = synthetic.features(case, 4000, seed=1), synthetic.features(case, 4000, seed=2)
    assert np.linalg.norm(centre(big_a[0], big_a[2]) - centre(big_b[0], big_b[2])) < 0.5
    moved = synthetic.features(case, 4000, seed=1, population=1)
    assert np.linalg.norm(centre(big_a[0], big_a[2]) - centre(moved[0], moved[2])) > 1.5


def test_latents_follow_the_case_distribution():
    case = synthetic.CASES["noisy_channels"]
    t, s, y = synthetic.sample_latents(case, 40_000, np.random.default_rng(0))
    counts = np.zeros(case.p.shape)
    np.add.at(counts, (t, s, y), 1)
    assert np.abs(counts / 40_000 - case.p).max() < 0.01


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mapping": "conv"}, "unknown mapping 'conv'; valid names: linear, mlp"),
        ({"dim": 3}, r"dim >= 4 \(the linear map's width\)"),
        ({"dim": 32, "mapping": "mlp"}, "dim >= 64"),
        ({"noise": -1.0}, "noise >= 0"),
        ({"n": 0}, "n >= 1"),
    ],
)
def test_bad_feature_settings_say_what_is_wrong(arguments, message):
    with pytest.raises(ConfigError, match=message):
        synthetic.features(synthetic.CASES["noisy_channels"], **{"n": 10, **arguments})

