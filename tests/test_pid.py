"""The PID engine against the canonical examples' reference table and an independent exponential-cone oracle,
its identities and error messages, and ``measure`` on representations with known content."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from oracle import oracle_pid

from pidkd.pid import (
    AND_RED,
    CANONICAL,
    INTERVAL_TERMS,
    PID,
    EstimateWarning,
    InputError,
    Measurement,
    broja_pid,
    cases,
    discretize,
    joint_distribution,
    label_mi,
    measure,
    measure_codes,
    mutual_information,
    plug_in_bias,
)

PARTS = ("red", "uni_t", "uni_s", "syn")


def gate(f, n_y: int = 2) -> np.ndarray:
    """p[t, s, y] for uniform independent bits t, s and y = f(t, s)."""
    p = np.zeros((2, 2, n_y))
    for a in (0, 1):
        for b in (0, 1):
            p[a, b, f(a, b)] = 0.25
    return p


def rdn() -> np.ndarray:
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[1, 1, 1] = 0.5
    return p


def random_distribution(rng: np.random.Generator, shape: tuple[int, int, int], alpha: float, zeros: float = 0.0):
    p = rng.dirichlet(np.full(math.prod(shape), alpha)) * (rng.random(math.prod(shape)) >= zeros)
    return (p / p.sum()).reshape(shape)


def assert_identities(pid: PID) -> None:
    assert min(pid.red, pid.uni_t, pid.uni_s, pid.syn) >= -1e-9
    assert pid.red + pid.uni_t == pytest.approx(pid.mi_t, abs=1e-9)
    assert pid.red + pid.uni_s == pytest.approx(pid.mi_s, abs=1e-9)
    assert pid.red + pid.uni_t + pid.uni_s + pid.syn == pytest.approx(pid.mi, abs=1e-9)


@pytest.mark.parametrize("name", CANONICAL)
def test_reference_table(name):
    case = CANONICAL[name]
    pid = broja_pid(case.p)
    assert [getattr(pid, part) for part in PARTS] == pytest.approx(list(case.parts.values()), abs=1e-6)
    assert_identities(pid)


@pytest.mark.parametrize("name", CANONICAL)
def test_oracle_reproduces_reference_table(name):
    case = CANONICAL[name]
    assert list(oracle_pid(case.p).values()) == pytest.approx(list(case.parts.values()), abs=1e-5)


@pytest.mark.parametrize(
    ("shape", "alpha", "zeros"),
    [
        ((2, 2, 2), 1.0, 0.0),
        ((3, 3, 2), 0.5, 0.0),
        ((4, 4, 3), 0.5, 0.0),
        ((3, 5, 4), 0.1, 0.0),
        ((5, 2, 3), 1.0, 0.4),
        ((6, 6, 5), 0.3, 0.0),
        ((8, 8, 5), 0.5, 0.0),
        ((7, 9, 4), 2.0, 0.5),
        ((12, 10, 6), 0.5, 0.0),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_oracle_on_random_distributions(shape, alpha, zeros, seed):
    p = random_distribution(np.random.default_rng(seed), shape, alpha, zeros)
    pid = broja_pid(p)
    assert [getattr(pid, part) for part in PARTS] == pytest.approx(list(oracle_pid(p).values()), abs=1e-5)
    assert_identities(pid)


def test_tight_tolerance_matches_default_within_it():
    p = random_distribution(np.random.default_rng(5), (6, 5, 4), 0.3)
    loose, tight = broja_pid(p), broja_pid(p, tol=1e-9)
    for part in PARTS:
        assert getattr(loose, part) == pytest.approx(getattr(tight, part), abs=1e-7)


@settings(max_examples=150, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(*[st.integers(1, 5)] * 3),
        elements=st.one_of(st.just(0.0), st.floats(1e-300, 1e3)),
    )
)
def test_identities_and_non_negativity(counts):
    if counts.sum() == 0:
        counts.flat[0] = 1.0
    pid = broja_pid(counts, normalize=True)
    assert_identities(pid)
    assert max(pid.mi_t, pid.mi_s) <= pid.mi + 1e-9


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.tuples(*[st.integers(1, 5)] * 3))
def test_swapping_teacher_and_student_swaps_unique_parts(seed, shape):
    p = random_distribution(np.random.default_rng(seed), shape, 0.5)
    pid, swapped = broja_pid(p), broja_pid(p.transpose(1, 0, 2))
    assert (swapped.red, swapped.uni_t, swapped.uni_s, swapped.syn) == pytest.approx(
        (pid.red, pid.uni_s, pid.uni_t, pid.syn), abs=1e-6
    )


def test_relabelling_and_zero_slices_change_nothing():
    rng = np.random.default_rng(3)
    p = random_distribution(rng, (4, 3, 3), 0.5)
    padded = np.zeros((6, 4, 5))
    padded[np.ix_([5, 0, 3, 2], [3, 0, 1], [4, 0, 2])] = p
    pid, moved = broja_pid(p), broja_pid(padded)
    for part in (*PARTS, "mi", "mi_t", "mi_s"):
        assert getattr(moved, part) == pytest.approx(getattr(pid, part), abs=1e-6)


def test_negligible_probabilities_count_as_zero():
    p = random_distribution(np.random.default_rng(6), (4, 4, 3), 0.5, zeros=0.5)
    dust = np.where(p == 0, 1e-13, 0.0)
    pid, dusted = broja_pid(p), broja_pid((p + dust) / (p + dust).sum())
    for part in (*PARTS, "mi", "mi_t", "mi_s"):
        assert getattr(dusted, part) == pytest.approx(getattr(pid, part), abs=1e-9)


def test_single_label_and_single_symbol():
    p = np.full((3, 2, 1), 1 / 6)
    assert broja_pid(p) == PID(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    q = random_distribution(np.random.default_rng(0), (4, 1, 3), 1.0)
    pid = broja_pid(q)
    assert (pid.red, pid.uni_s, pid.syn) == (0.0, 0.0, 0.0)
    assert pid.uni_t == pytest.approx(pid.mi_t)


def test_counts_and_torch_tensors():
    counts = gate(lambda a, b: a & b) * 40
    assert broja_pid(counts, normalize=True).red == pytest.approx(AND_RED, abs=1e-6)
    assert broja_pid(torch.tensor(counts / 40)).red == pytest.approx(AND_RED, abs=1e-6)


def test_results_are_plain_floats_and_flatten():
    pid = broja_pid(gate(lambda a, b: a ^ b))
    row = pid.as_dict()
    assert list(row) == ["red", "uni_t", "uni_s", "syn", "mi", "mi_t", "mi_s"]
    assert all(type(value) is float for value in row.values())
    with pytest.raises(AttributeError):
        pid.red = 1.0


@pytest.mark.parametrize(
    ("p", "message"),
    [
        (np.full((2, 2), 0.25), r"must have 3 dimensions; got shape \(2, 2\)"),
        (np.zeros((0, 2, 2)), "is empty"),
        (np.array([[[0.5, np.nan]], [[0.25, 0.25]]]), "contains NaN"),
        (np.array([[[0.5, np.inf]], [[0.25, 0.25]]]), "infinite"),
        (np.array([[[0.75, -0.25]], [[0.25, 0.25]]]), r"negative entries \(smallest -0.25\)"),
        (np.full((2, 2, 2), 0.2), "sums to 1.6.*not 1.*normalize=True"),
        (np.full((2, 2, 2), 0.125 + 1e-9), "not 1"),
        (np.array([[["a", "b"]]]), "real numbers"),
    ],
)
def test_bad_distributions_say_what_is_wrong(p, message):
    with pytest.raises(ValueError, match=message):
        broja_pid(p)


def test_bad_normalize_and_tolerance():
    with pytest.raises(ValueError, match="all zeros"):
        broja_pid(np.zeros((2, 2, 2)), normalize=True)
    with pytest.raises(ValueError, match="tol must be positive"):
        broja_pid(rdn(), tol=0.0)
    assert broja_pid(np.full((2, 2, 2), 0.125 + 1e-11)).mi == pytest.approx(0.0)


def test_mutual_information():
    assert mutual_information(np.eye(2) / 2) == pytest.approx(1.0)
    assert mutual_information(np.full((3, 4), 1 / 12)) == pytest.approx(0.0, abs=1e-12)
    assert mutual_information(np.array([[3, 1], [1, 3]]), normalize=True) == pytest.approx(
        1 - (-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))), abs=1e-12
    )
    with pytest.raises(ValueError, match="2 dimensions"):
        mutual_information(np.full(4, 0.25))


def test_joint_distribution_counts_triples():
    p = joint_distribution([0, 1, 1, 1], np.array([2, 0, 0, 0]), [0, 0, 0, 1])
    assert p.shape == (2, 3, 2)
    assert p[1, 0, 0] == 0.5 and p[0, 2, 0] == 0.25 and p[1, 0, 1] == 0.25
    with pytest.raises(ValueError, match="equal length"):
        joint_distribution([0, 1], [0])
    with pytest.raises(ValueError, match="non-negative integers"):
        joint_distribution([0.5, 1.0])


def label_features(labels: np.ndarray, rng: np.random.Generator, shape=(4, 3, 3)) -> np.ndarray:
    """Features that encode a binary label (two well separated clouds) and nothing else."""
    centres = rng.normal(size=(2, *shape))
    return centres[labels] + 0.05 * rng.normal(size=(len(labels), *shape))


def test_measure_finds_redundancy_when_both_encode_the_label():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 500)
    t, s = label_features(y, rng), label_features(y, rng, shape=(7,))
    m = measure(t, s, y)
    assert isinstance(m, Measurement) and isinstance(m, PID)
    assert m.n == 1000
    assert m.red == pytest.approx(1.0, abs=1e-3)
    assert max(m.uni_t, m.uni_s, m.syn) < 1e-3


def test_measure_finds_teacher_unique_information():
    rng = np.random.default_rng(1)
    y = rng.permutation(np.repeat([0, 1], 1000))
    t, s = label_features(y, rng), rng.normal(size=(2000, 16))
    m = measure(t, s, y)
    assert m.uni_t == pytest.approx(1.0, abs=0.02)
    assert max(m.red, m.uni_s, m.syn) < 0.02


def test_shuffled_label_control_shows_only_the_estimator_bias():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 500)
    t, s = label_features(y, rng), label_features(y, rng)
    control = measure(t, s, y, control=True)
    assert control.mi < 0.05
    assert control.as_dict() == {**control.as_dict(), "n": 1000}
    assert list(control.as_dict()) == ["red", "uni_t", "uni_s", "syn", "mi", "mi_t", "mi_s", "mi_ts", "n", "bias_bound"]
    assert control.mi_ts > 0.9  # shuffling labels leaves the teacher-student relation (1 bit) intact


def test_measure_accepts_torch_and_is_deterministic_without_global_state():
    rng = np.random.default_rng(4)
    y = torch.tensor(np.repeat([3, 7], 100))
    t = torch.tensor(label_features((y == 7).numpy().astype(int), rng), requires_grad=True)
    s = torch.randn(200, 2, 5)
    before = np.random.get_state()[1].copy()
    first, second = measure(t, s, y, seed=3), measure(t, s, y, seed=3)
    assert first == second and first.n == 200
    assert first.mi_t == pytest.approx(1.0, abs=1e-3)
    assert np.array_equal(np.random.get_state()[1], before)


def test_measure_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one row per example"):
        measure(np.zeros((5, 2)), np.zeros((4, 2)), np.zeros(5))


def test_discretize_handles_tiny_and_degenerate_inputs():
    codes = discretize(np.arange(6.0).reshape(3, 2) + 1, n_clusters=5, n_components=5)
    assert codes.dtype == np.int64 and codes.shape == (3,)
    assert len(np.unique(codes)) <= 3
    assert np.array_equal(discretize(np.ones((4, 3))), np.zeros(4, dtype=np.int64))
    assert np.array_equal(discretize(np.zeros((4, 3))), np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="NaN"):
        discretize(np.array([[np.nan, 1.0], [1.0, 2.0]]))


def test_information_between_representations():
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 300)
    t, s = label_features(y, rng), label_features(y, rng)
    assert label_mi(t, y) == pytest.approx(1.0, abs=1e-3)
    assert mutual_information(joint_distribution(discretize(t, 2), discretize(s, 2))) == pytest.approx(1.0, abs=1e-3)
    noise_codes = discretize(rng.normal(size=(600, 8)), 5)  # plug-in bias about 16 / (2 n ln 2) bits
    assert mutual_information(joint_distribution(discretize(t, 5), noise_codes)) < 0.05


def width(m: Measurement, term: str) -> float:
    low, high = m.intervals[term]
    return high - low


def test_bootstrap_intervals_cover_every_term_and_contain_the_estimate():
    t, s, y = cases.features(cases.CASES["noisy_channels"], 800, noise=0.5, dim=64)
    m = measure(t, s, y, bootstrap=40)
    assert list(m.intervals) == list(INTERVAL_TERMS)
    for term, (low, high) in m.intervals.items():
        assert type(low) is float and type(high) is float
        assert 0.0 <= low <= getattr(m, term) <= high, term
    assert min(width(m, term) for term in ("red", "uni_t", "mi", "mi_t", "mi_s", "mi_ts")) > 0.02
    plain = measure(t, s, y)
    assert plain.intervals is None
    assert {k: v for k, v in m.as_dict().items() if not k.endswith(("_low", "_high"))} == plain.as_dict()
    assert m.as_dict()["red_low"] == m.intervals["red"][0] and m.as_dict()["mi_ts_high"] == m.intervals["mi_ts"][1]


def test_bootstrap_intervals_shrink_with_n_and_are_deterministic():
    case = cases.CASES["noisy_channels"]
    small, large = (measure(*cases.features(case, n, noise=0.5, dim=64), bootstrap=30) for n in (400, 6400))
    for term in ("red", "uni_t", "mi"):
        assert width(large, term) < 0.5 * width(small, term), term  # 1/sqrt(16) = 0.25 expected
    assert measure(*cases.features(case, 400, noise=0.5, dim=64), bootstrap=30) == small


def test_bootstrap_width_matches_the_spread_across_data_sets():
    """Codes that are the latent states themselves, 12 independent data sets of 2000 examples: the
    intervals are as wide as the estimates really spread (4 standard deviations for a 95% interval)."""
    case = cases.CASES["noisy_channels"]
    samples = [cases.sample_latents(case, 2000, np.random.default_rng(seed)) for seed in range(12)]
    measured = [measure_codes(*latents, seed=seed, bootstrap=30) for seed, latents in enumerate(samples)]
    for term in ("red", "uni_t", "mi"):
        spread = 2 * 1.96 * np.std([getattr(m, term) for m in measured], ddof=1)
        assert 0.6 < np.mean([width(m, term) for m in measured]) / spread < 1.6, term
        assert abs(np.mean([getattr(m, term) for m in measured]) - getattr(case.truth, term)) < spread / 4


def test_bootstrap_of_shuffled_labels_reaches_zero():
    t, s, y = cases.features(cases.CASES["label_and_nuisance"], 500, noise=0.25, dim=64)
    control = measure(t, s, y, n_clusters=5, control=True, bootstrap=30)  # 5 clusters hold its 4 and 2 states
    assert control.intervals["mi"][0] == 0.0 and control.intervals["mi"][1] < 0.05
    assert control.intervals["mi_ts"][0] > 0.9  # shuffling labels leaves T and S as related as they were


@pytest.mark.parametrize("bootstrap", [-1, 5, 2.5, True, "200"])
def test_bad_bootstrap_counts_say_what_is_allowed(bootstrap):
    rng = np.random.default_rng(0)
    t, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    allowed = r"bootstrap must be 0 \(no intervals\) or a whole number of resamples >= 20, e.g. 200; got "
    for call in (lambda: measure(t, t, y, bootstrap=bootstrap), lambda: measure_codes(y, y, y, bootstrap=bootstrap)):
        with pytest.raises(InputError, match=allowed):
            call()


def noise(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Teacher and student features and labels of 10 classes, all independent: no information at all."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 32)), rng.normal(size=(n, 32)), rng.integers(0, 10, n)


def test_fewer_examples_than_histogram_cells_are_refused_saying_how_many_are_needed():
    rng = np.random.default_rng(0)
    y = np.arange(5)
    with pytest.raises(InputError, match=r"^5 examples are too few for 5 x 5 clusters and 5 classes: the joint "
                                         r"histogram has 125 cells; use at least that many examples \(1385 keep the "
                                         r"plug-in bias under 0.05 bits\) or fewer clusters$"):
        measure(rng.normal(size=(5, 8)), rng.normal(size=(5, 8)), y)  # was Red = log2 5 bits, without a word
    with pytest.raises(InputError, match="500 examples are too few for 10 x 10 clusters and 10 classes"):
        measure(*noise(500))  # was I(Y;T,S) = 1.30 bits of plug-in bias
    with pytest.raises(InputError, match="300 examples are too few for 20 x 1 clusters and 20 classes"):
        measure_codes(np.arange(300) % 20, np.zeros(300, dtype=int), np.arange(300) % 20)
    assert measure(rng.normal(size=(5, 8)), rng.normal(size=(5, 8)), y, allow_few=True, warn=False).n == 5


def test_a_measurement_of_pure_noise_warns_with_its_bias_bound():
    t, s, y = noise(2000)
    with pytest.warns(EstimateWarning, match=r"^I\(Y; T, S\) = 0\.\d+ bits, of which up to 0\.321 may be plug-in bias "
                                             r"\(2000 examples, 10 x 10 clusters, 10 classes\): read it against "
                                             r"control=True, or use more examples \(12855 keep"):
        m = measure(t, s, y)
    assert m.bias_bound == pytest.approx(99 * 9 / (2 * 2000 * math.log(2))) and m.bias_bound > 0.25 * m.mi
    assert m.as_dict()["bias_bound"] == m.bias_bound
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert measure(t, s, y, warn=False) == m
        assert measure(t, s, y, control=True).bias_bound == m.bias_bound  # the control is the bias: no warning


def test_a_measurement_well_above_its_bias_bound_does_not_warn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 4000)
    codes = y * 2 + rng.integers(0, 2, 4000)  # 8 codes, each within one class: I(Y; T, S) = 2 bits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = measure_codes(codes, codes, y)
    assert m.mi == pytest.approx(2.0, abs=1e-3)
    assert m.bias_bound == pytest.approx(plug_in_bias(8, 8, 4, 4000)) == pytest.approx(63 * 3 / (8000 * math.log(2)))


def test_the_bias_bound_counts_the_codes_and_classes_actually_used():
    y = np.array([3, 7, 9, 3, 7, 9] * 50)
    codes_t, codes_s = np.array([0, 4, 9] * 100), np.array([2, 5] * 150)  # 3 and 2 codes of larger ranges
    m = measure_codes(codes_t, codes_s, y, warn=False)
    assert m.bias_bound == pytest.approx((3 * 2 - 1) * (3 - 1) / (2 * 300 * math.log(2)))


@pytest.mark.parametrize("labels", [np.repeat([0.0, 1.0], 50), torch.repeat_interleave(torch.tensor([0.0, 1.0]), 50),
                                    np.repeat(["cat", "dog"], 50)])
def test_labels_must_be_class_indices(labels):
    rng = np.random.default_rng(0)
    t = rng.normal(size=(100, 4))
    message = (r"^y must hold class indices \(an integer or bool array\), not \S+: pass y.astype\(int\) if they are "
               r"whole numbers, else np.unique\(y, return_inverse=True\)\[1\]$")
    for call in (lambda: measure(t, t, labels), lambda: measure_codes(np.zeros(100, int), np.zeros(100, int), labels),
                 lambda: label_mi(t, labels)):
        with pytest.raises(InputError, match=message):
            call()


def test_bool_and_torch_integer_labels_are_class_indices():
    codes = np.repeat([0, 1], 50)
    assert measure_codes(codes, codes, codes.astype(bool)).mi == pytest.approx(1.0)
    assert measure_codes(codes, codes, torch.tensor(codes) * 5 + 3).mi == pytest.approx(1.0)
