"""Measuring the PID on representations: discretisation (PCA, then k-means), the plug-in joint
distribution of (t, s, y), its bias bound, bootstrap intervals, and I(Y; X) of one representation.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .decomposition import _LN2, Measurement, _to_numpy, broja_pid, mutual_information
from .errors import EstimateWarning, InputError

# Default discretisation, chosen by notebook 2's study of the measure (docs/method.md has its numbers).
N_CLUSTERS = 10
N_COMPONENTS = 10
INTERVAL_TERMS = ("red", "uni_t", "uni_s", "syn", "mi", "mi_t", "mi_s", "mi_ts")
MIN_RESAMPLES = 20  # fewer bootstrap resamples cannot place a 2.5% and a 97.5% percentile apart
BIAS_SHARE = 0.25  # measure warns when its bias bound is above this share of I(Y; T, S)
BIAS_TARGET = 0.05  # bits: the bias a refusal says how many examples keep the bound under (notebook 2's rule)


def discretize(x: Any, n_clusters: int = N_CLUSTERS, n_components: int = N_COMPONENTS, seed: int = 0) -> np.ndarray:
    """Integer cluster codes of per-example features ``x`` (any trailing shape).

    Flatten, L2-normalise, reduce with PCA and cluster with k-means, as the paper does;
    ``n_components`` and ``n_clusters`` shrink to what tiny inputs allow. Choose at least as many
    clusters as the classes a layer separates, and at least ``n_clusters - 1`` components: fewer merge
    classes (notebook 2 measures how much that costs, and how many examples more clusters need).
    """
    return cluster_codes(principal_components(x, n_components, seed), n_clusters, seed)


def principal_components(x: Any, n_components: int = N_COMPONENTS, seed: int = 0) -> np.ndarray:
    """The first step of ``discretize``: ``x`` flattened per example, L2-normalised and projected on
    its ``n_components`` leading principal components (fewer if ``x`` has fewer rows or columns)."""
    from sklearn.decomposition import PCA  # here: importing scikit-learn takes seconds, and only this needs it

    x = _to_numpy(x)
    if x.ndim == 0 or len(x) == 0:
        raise InputError(f"need at least one example to discretize; got shape {x.shape}")
    if n_components < 1:
        raise InputError(f"n_components must be >= 1; got {n_components}")
    x = x.reshape(len(x), -1).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError("features contain NaN or infinite values")
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.finfo(np.float64).tiny)
    with threadpool_limits(limits=1):  # see _one_thread in decomposition.py
        return PCA(n_components=min(n_components, *x.shape), random_state=seed).fit_transform(x)


def cluster_codes(
    z: np.ndarray, n_clusters: int = N_CLUSTERS, seed: int = 0, weights: np.ndarray | None = None
) -> np.ndarray:
    """The second step of ``discretize``: k-means codes of the rows of ``z`` (each counted ``weights``
    times, if given), with at most as many clusters as ``z`` has distinct rows."""
    from sklearn.cluster import KMeans

    if n_clusters < 1:
        raise InputError(f"n_clusters must be >= 1; got {n_clusters}")
    # distinct values of one coordinate are distinct rows, and cheaper to count
    n_distinct = max(len(np.unique(z[:, 0])), 1)
    if n_distinct < n_clusters:
        n_distinct = len(np.unique(z, axis=0))
    if n_distinct == 1:
        return np.zeros(len(z), dtype=np.int64)
    with threadpool_limits(limits=1):  # see _one_thread in decomposition.py
        kmeans = KMeans(n_clusters=min(n_clusters, n_distinct), n_init=4, random_state=seed)
        return kmeans.fit_predict(z, sample_weight=weights).astype(np.int64)


def joint_distribution(*codes: Any) -> np.ndarray:
    """Normalised histogram of equally long non-negative integer code arrays, one axis each."""
    codes = [_to_numpy(c).ravel() for c in codes]
    if not codes or len({len(c) for c in codes}) != 1 or len(codes[0]) == 0:
        raise InputError(f"need non-empty code arrays of equal length; got lengths {[len(c) for c in codes]}")
    if any(not np.issubdtype(c.dtype, np.integer) or c.min() < 0 for c in codes):
        raise InputError("codes must be non-negative integers")
    shape = tuple(int(c.max()) + 1 for c in codes)
    counts = np.bincount(np.ravel_multi_index(codes, shape), minlength=math.prod(shape))
    return counts.reshape(shape) / len(codes[0])


def measure(
    t: Any,
    s: Any,
    y: Any,
    n_clusters: int = N_CLUSTERS,
    n_components: int = N_COMPONENTS,
    seed: int = 0,
    control: bool = False,
    bootstrap: int = 0,
    *,
    warn: bool = True,
    allow_few: bool = False,
) -> Measurement:
    """PID of the labels ``y`` (class indices) against teacher features ``t`` and student features ``s``.

    Each representation is discretized (see ``discretize``) and the (t, s, y) triples are counted
    into a plug-in joint distribution. ``control=True`` shuffles the labels first: what remains is
    the estimator's bias at this sample size, the floor to read the real measurement against;
    ``bias_bound`` is a bound on that bias computed from the counts alone (see ``plug_in_bias``).
    Fewer examples than cells of the histogram (clusters used x clusters used x classes) are refused
    unless ``allow_few`` (for studies of that bias); a bias bound above ``BIAS_SHARE`` of I(Y; T, S)
    issues an ``EstimateWarning`` unless ``warn=False`` (callers that report ``bias_bound`` themselves).
    ``bootstrap=B`` adds 95% intervals (see ``bootstrap_intervals``) from B resamples of the
    examples, k-means refitted on each: which groups the clusters merge varies from sample to
    sample, and codes held fixed would hide that. PCA is kept: refitting it would add minutes at
    10,000 x 1,000 and changed little on the ground-truth cases (docs/method.md).
    """
    if not len(t) == len(s) == len(y):
        raise InputError(f"t, s and y must have one row per example; got {len(t)}, {len(s)}, {len(y)}")
    labels = _label_codes(y)
    n = len(labels)
    _check_bootstrap(bootstrap)
    z_t, z_s = principal_components(t, n_components, seed), principal_components(s, n_components, seed)
    labels, rng = _observed_labels(labels, seed, control)
    codes_t, codes_s = cluster_codes(z_t, n_clusters, seed), cluster_codes(z_s, n_clusters, seed)
    point = _point(joint_distribution(codes_t, codes_s, labels), n, warn and not control, allow_few)
    if not bootstrap:
        return point
    resampled = []
    for _ in range(bootstrap):
        # a resample as how often it draws each example: k-means weighs the drawn ones instead of repeating them
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
        drawn = np.flatnonzero(counts)
        weights = counts[drawn]
        codes = [np.repeat(cluster_codes(z[drawn], n_clusters, seed, weights), weights) for z in (z_t, z_s)]
        resampled.append(_plug_in(joint_distribution(*codes, np.repeat(labels[drawn], weights)), n))
    return bootstrap_intervals(point, resampled)


def measure_codes(
    codes_t: Any, codes_s: Any, y: Any, seed: int = 0, control: bool = False, bootstrap: int = 0,
    *, warn: bool = True, allow_few: bool = False,
) -> Measurement:
    """``measure`` on representations already discretized, e.g. a teacher's codes reused for
    every student and epoch it is compared with, refused and warned about alike. ``bootstrap=B``
    resamples the examples with the codes held fixed, so its intervals leave out how the clustering
    itself varies."""
    _check_bootstrap(bootstrap)
    labels, rng = _observed_labels(_label_codes(y), seed, control)
    p = joint_distribution(codes_t, codes_s, labels)
    n = len(labels)
    point = _point(p, n, warn and not control, allow_few)
    if not bootstrap:
        return point
    # with the codes fixed, a resample of the examples is a multinomial draw of the joint counts
    counts = rng.multinomial(n, p.ravel(), size=bootstrap).reshape(-1, *p.shape)
    return bootstrap_intervals(point, [_plug_in(c / n, n) for c in counts])


def bootstrap_intervals(point: Measurement, resampled: list[Measurement]) -> Measurement:
    """``point`` with a 95% interval for each of ``INTERVAL_TERMS`` from its values on bootstrap resamples.

    The basic bootstrap interval (the resamples' 2.5-97.5% range reflected about the estimate, floored
    at 0), stretched to include the estimate. Reflection matters for a plug-in estimate: each resample
    adds the plug-in's upward bias once more, so a term whose truth is 0 has resampled values all above
    its estimate, and their own range would exclude 0 (as it did on the ground-truth cases; docs/method.md).
    """
    values = np.array([[getattr(m, term) for term in INTERVAL_TERMS] for m in resampled])
    estimate = np.array([getattr(point, term) for term in INTERVAL_TERMS])
    low, high = np.percentile(values, [2.5, 97.5], axis=0)
    low, high = np.maximum(2 * estimate - high, 0.0), np.maximum(2 * estimate - low, 0.0)
    low, high = np.minimum(low, estimate), np.maximum(high, estimate)
    return replace(point, intervals={term: (float(a), float(b)) for term, a, b in zip(INTERVAL_TERMS, low, high)})


def _observed_labels(labels: np.ndarray, seed: int, control: bool) -> tuple[np.ndarray, np.random.Generator]:
    """The labels to measure against (shuffled for the control) and the generator for resampling."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(labels) if control else labels), rng


def plug_in_bias(k_t: int, k_s: int, n_classes: int, n: int) -> float:
    """A bound, in bits, on the upward bias of the plug-in I(Y; T, S) from n examples in k_t x k_s codes
    and n_classes classes: (k_t k_s - 1)(C - 1) / (2 n ln 2), Miller and Madow's first-order bias with
    every (t, s) cell occupied; notebook 2 chooses n by it."""
    return (k_t * k_s - 1) * (n_classes - 1) / (2 * n * _LN2)


def _occupied(p: np.ndarray) -> tuple[int, int, int]:
    """How many teacher codes, student codes and classes a joint distribution p[t, s, y] uses."""
    return tuple(int(np.count_nonzero(p.sum(axis=other))) for other in ((1, 2), (0, 2), (0, 1)))


def _point(p: np.ndarray, n: int, warn: bool, allow_few: bool) -> Measurement:
    """The measurement of ``p`` from n examples: an InputError when n is below the histogram's cells
    (unless ``allow_few``), an EstimateWarning when its bias bound is above BIAS_SHARE of I(Y; T, S)."""
    k_t, k_s, classes = _occupied(p)
    needed = math.ceil(plug_in_bias(k_t, k_s, classes, 1) / BIAS_TARGET)
    if n < k_t * k_s * classes and not allow_few:
        raise InputError(
            f"{n} examples are too few for {k_t} x {k_s} clusters and {classes} classes: the joint histogram has "
            f"{k_t * k_s * classes} cells; use at least that many examples ({needed} keep the plug-in bias under "
            f"{BIAS_TARGET} bits) or fewer clusters"
        )
    point = _plug_in(p, n)
    if warn and point.bias_bound > BIAS_SHARE * point.mi:
        warnings.warn(
            f"I(Y; T, S) = {point.mi:.3f} bits, of which up to {point.bias_bound:.3f} may be plug-in bias ({n} examples, "
            f"{k_t} x {k_s} clusters, {classes} classes): read it against control=True, or use more examples "
            f"({needed} keep the bias under {BIAS_TARGET} bits) or fewer clusters",
            EstimateWarning,
            stacklevel=3,
        )
    return point


def _plug_in(p: np.ndarray, n: int) -> Measurement:
    """The measurement of an empirical joint distribution of n examples, with its bias bound."""
    return Measurement(**broja_pid(p).as_dict(), mi_ts=mutual_information(p.sum(axis=2)), n=n,
                       bias_bound=plug_in_bias(*_occupied(p), n))


def _check_bootstrap(bootstrap: int) -> None:
    """An InputError unless ``bootstrap`` is 0 or a whole number of at least MIN_RESAMPLES."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or (
        bootstrap != 0 and bootstrap < MIN_RESAMPLES
    ):
        raise InputError(
            f"bootstrap must be 0 (no intervals) or a whole number of resamples >= {MIN_RESAMPLES}, e.g. 200; "
            f"got {bootstrap!r}"
        )


def label_mi(
    x: Any, y: Any, n_clusters: int = N_CLUSTERS, n_components: int = N_COMPONENTS, seed: int = 0
) -> float:
    """I(Y; X) in bits between labels and discretized features, e.g. I(Y; T) or I(Y; S)."""
    labels = _label_codes(y)
    if len(x) != len(labels):
        raise InputError(f"x and y must have one row per example; got {len(x)} and {len(labels)}")
    return mutual_information(joint_distribution(discretize(x, n_clusters, n_components, seed), labels))


def _label_codes(y: Any) -> np.ndarray:
    """Class indices (any integers, or bools) as codes 0..k-1; other labels are refused: float ones
    would each count as a class of their own."""
    y = _to_numpy(y)
    if y.ndim != 1 or len(y) == 0:
        raise InputError(f"y must be a non-empty 1-D array of labels; got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise InputError(f"y must hold class indices (an integer or bool array), not {y.dtype}: pass y.astype(int) "
                         f"if they are whole numbers, else np.unique(y, return_inverse=True)[1]")
    return np.unique(y, return_inverse=True)[1].astype(np.int64)

