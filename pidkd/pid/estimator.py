"""Partial information decomposition (BROJA) of discrete distributions, and measuring it on
representations: the quantities the paper argues with, Red(Y: T, S) and Uni(Y: T \\ S).

The BROJA decomposition needs the minimum of I_Q(Y; T, S) over the distributions Q with P's (t, y)
and (s, y) marginals, a convex program. ``broja_pid`` solves it by log-barrier path following
written for its structure: the constraints are one transportation polytope per label y, so each
Newton step costs one dense Cholesky factorisation of size min(|T|, |S|) * |Y|; a duality gap
certifies every result.
"""
from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

from pidkd.errors import ConfigError, EstimateWarning

logger = logging.getLogger(__name__)

TOTAL_TOL = 1e-9  # how far from 1 the total of a distribution may be
_LN2 = math.log(2.0)
_NEGLIGIBLE = 1e-12  # probabilities below this count as 0: that moves each part by about m log2(1/m)
# bits for their total m (4e-10 for ten of them); their logs would take the solver past double precision
_ACCEPTABLE_GAP = 1e-4  # bits; a solve stalled by rounding this close is returned with a warning
_MAX_NEWTON = 100
_KAPPA = 10.0  # factor by which the barrier weight tau shrinks
_CENTRED = 0.25  # move tau on once the squared Newton decrement is below this * n * tau
_STALL_ITERATIONS = 8  # give up on tol once the gap has not halved in this many iterations
_STALL_TAU = 1e-3  # ... and the barrier weight n * tau is this far below tol
_STEP_TO_BOUNDARY = 0.99
_ARMIJO = 1e-4
_MIN_STEP = 1e-12
_DRIFT = 1e-9  # an iterate whose marginals drift this far (rounding) is pulled back onto them


@dataclass(frozen=True)
class PID:
    """The BROJA decomposition of I(Y; T, S), in bits: red + uni_t + uni_s + syn = mi."""

    red: float  # Red(Y: T, S), transferred knowledge
    uni_t: float  # Uni(Y: T \ S), knowledge left to distill
    uni_s: float  # Uni(Y: S \ T)
    syn: float  # Syn(Y: T, S)
    mi: float  # I(Y; T, S)
    mi_t: float  # I(Y; T) = red + uni_t
    mi_s: float  # I(Y; S) = red + uni_s

    def as_dict(self) -> dict[str, float]:
        """Flat fields, e.g. for a row of pid.csv."""
        return asdict(self)


@dataclass(frozen=True)
class Measurement(PID):
    """A PID measured on ``n`` examples, with I(T; S) between the two discretized representations
    (what mutual-information distillation drives up); plug-in estimates, biased upward when n is small,
    by at most about ``bias_bound`` bits (see ``plug_in_bias``). ``intervals`` maps each of
    ``INTERVAL_TERMS`` to a bootstrap 95% (low, high), or is None."""

    mi_ts: float
    n: int
    bias_bound: float
    intervals: dict[str, tuple[float, float]] | None = field(default=None, hash=False)

    def as_dict(self) -> dict[str, float]:
        """Flat fields, e.g. for a row of pid.csv; an interval becomes ``<term>_low`` and ``<term>_high``."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "intervals"}
        for term, (low, high) in (self.intervals or {}).items():
            row[f"{term}_low"], row[f"{term}_high"] = low, high
        return row


# Default discretisation, from the study of notebook 2 (benchmarks/measure_study.py): on its ground-truth
# cases at noise 0.25, 10 clusters and 10 PCA components kept every part within 0.11 bits of the truth at
# 1,000 examples (0.04 at 5,000), where the authors' 5 and 5 lost over a bit of a 10-class representation;
# on cases of at most 5 states, 10 clusters cost at most 0.06 bits more than 5.
N_CLUSTERS = 10
N_COMPONENTS = 10
INTERVAL_TERMS = ("red", "uni_t", "uni_s", "syn", "mi", "mi_t", "mi_s", "mi_ts")
MIN_RESAMPLES = 20  # fewer bootstrap resamples cannot place a 2.5% and a 97.5% percentile apart
BIAS_SHARE = 0.25  # measure warns when its bias bound is above this share of I(Y; T, S); at the embedded
# profile's 2,000 examples, 10 clusters and 10 classes (bound 0.32 bits) it warns below 1.29 bits of I(Y; T, S)
BIAS_TARGET = 0.05  # bits: the bias a refusal says how many examples keep the bound under (notebook 2's rule)


@dataclass(frozen=True)
class Canonical:
    """A canonical PID example: T, S and Y as functions of two uniform bits (X1, X2), listed over
    the four equally likely (X1, X2), with its decomposition in bits known in closed form."""

    t: tuple[int, ...]
    s: tuple[int, ...]
    y: tuple[int, ...]
    red: float
    uni_t: float
    uni_s: float
    syn: float

    @property
    def p(self) -> np.ndarray:
        """The joint distribution p[t, s, y]."""
        return joint_distribution(self.t, self.s, self.y)

    @property
    def parts(self) -> dict[str, float]:
        """The expected red, uni_t, uni_s and syn."""
        return {"red": self.red, "uni_t": self.uni_t, "uni_s": self.uni_s, "syn": self.syn}


_X1, _X2 = (0, 0, 1, 1), (0, 1, 0, 1)
AND_RED = 1.5 - 0.75 * math.log2(3)  # I(Y; X1) for Y = X1 and X2: 0.311 bits
CANONICAL: dict[str, Canonical] = {
    "XOR": Canonical(_X1, _X2, tuple(a ^ b for a, b in zip(_X1, _X2)), 0.0, 0.0, 0.0, 1.0),
    "AND": Canonical(_X1, _X2, tuple(a & b for a, b in zip(_X1, _X2)), AND_RED, 0.0, 0.0, 0.5),
    "RDN": Canonical(_X1, _X1, _X1, 1.0, 0.0, 0.0, 0.0),
    "UNQ": Canonical(_X1, _X2, _X1, 0.0, 1.0, 0.0, 0.0),
    "COPY": Canonical(_X1, _X2, tuple(2 * a + b for a, b in zip(_X1, _X2)), 0.0, 1.0, 1.0, 0.0),
}
"""The five classic examples every BROJA implementation must reproduce (Bertschinger et al. 2014):
synergy (XOR), redundancy (RDN), unique information (UNQ, COPY) and a mixture (AND)."""


def broja_pid(p: Any, normalize: bool = False, tol: float = 1e-7) -> PID:
    """BROJA decomposition of a joint distribution ``p[t, s, y]``, in bits.

    ``normalize=True`` accepts counts. ``tol`` is the certified duality gap, in bits, at which the
    solver stops: every part is then within ``tol`` of its exact value (probabilities below 1e-12
    count as 0). Zero rows, columns and labels are allowed.
    """
    p = _check_distribution(p, ("t", "s", "y"), normalize)
    if not tol > 0:
        raise ConfigError(f"tol must be positive; got {tol}")
    p = np.where(p < _NEGLIGIBLE, 0.0, p)
    p /= p.sum()
    mi = _mi_bits(p.reshape(-1, p.shape[2]))
    mi_t = _mi_bits(p.sum(axis=1))
    mi_s = _mi_bits(p.sum(axis=0))
    # I_Q*(Y; T, S) lies in [low, high]: Q* is at least as informative as each marginal fixes, and
    # no more than P or the Q under which T and S are independent given Y
    floor, ceiling = max(mi_t, mi_s), min(mi, mi_t + mi_s)
    low, high = floor, ceiling
    p = p[p.sum(axis=(1, 2)) > 0][:, p.sum(axis=(0, 2)) > 0][:, :, p.sum(axis=(0, 1)) > 0]
    if high - low > tol and min(p.shape) > 1:
        if p.shape[1] > p.shape[0]:
            p = p.transpose(1, 0, 2)  # I_Q(Y; T, S) is symmetric; this keeps the dense system small
        p_y = p.sum(axis=(0, 1))
        h_y = -float(np.sum(p_y * np.log2(p_y)))
        stall_gap = max(tol, _ACCEPTABLE_GAP)
        with threadpool_limits(limits=1):  # see _one_thread
            upper, lower = _minimise_mi(
                p.sum(axis=1), p.sum(axis=0), tol * _LN2, stall_gap * _LN2, ((low - h_y) * _LN2, (high - h_y) * _LN2)
            )
        low, high = max(low, h_y + lower / _LN2), min(high, h_y + upper / _LN2)
        if high - low > stall_gap:
            raise RuntimeError(f"BROJA solver stopped at duality gap {high - low:.3g} bits (tol {tol:g})")
        if high - low > tol:
            logger.warning("BROJA solver stalled by rounding at duality gap %.3g bits (tol %g)", high - low, tol)
    # the upper end is attained by a Q in Delta_P (or bounds one); clamping keeps every part >= 0
    mi_q = min(max(high, floor), ceiling)
    return PID(
        red=mi_t + mi_s - mi_q,
        uni_t=mi_q - mi_s,
        uni_s=mi_q - mi_t,
        syn=mi - mi_q,
        mi=mi,
        mi_t=mi_t,
        mi_s=mi_s,
    )


def mutual_information(p_xy: Any, normalize: bool = False) -> float:
    """I(X; Y) in bits of a 2-D joint distribution ``p_xy[x, y]``."""
    return _mi_bits(_check_distribution(p_xy, ("x", "y"), normalize))


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
        raise ConfigError(f"need at least one example to discretize; got shape {x.shape}")
    if n_components < 1:
        raise ConfigError(f"n_components must be >= 1; got {n_components}")
    x = x.reshape(len(x), -1).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ConfigError("features contain NaN or infinite values")
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.finfo(np.float64).tiny)
    with threadpool_limits(limits=1):  # see _one_thread
        return PCA(n_components=min(n_components, *x.shape), random_state=seed).fit_transform(x)


def cluster_codes(
    z: np.ndarray, n_clusters: int = N_CLUSTERS, seed: int = 0, weights: np.ndarray | None = None
) -> np.ndarray:
    """The second step of ``discretize``: k-means codes of the rows of ``z`` (each counted ``weights``
    times, if given), with at most as many clusters as ``z`` has distinct rows."""
    from sklearn.cluster import KMeans

    if n_clusters < 1:
        raise ConfigError(f"n_clusters must be >= 1; got {n_clusters}")
    # distinct values of one coordinate are distinct rows, and cheaper to count
    n_distinct = max(len(np.unique(z[:, 0])), 1)
    if n_distinct < n_clusters:
        n_distinct = len(np.unique(z, axis=0))
    if n_distinct == 1:
        return np.zeros(len(z), dtype=np.int64)
    with threadpool_limits(limits=1):  # see _one_thread
        kmeans = KMeans(n_clusters=min(n_clusters, n_distinct), n_init=4, random_state=seed)
        return kmeans.fit_predict(z, sample_weight=weights).astype(np.int64)


def joint_distribution(*codes: Any) -> np.ndarray:
    """Normalised histogram of equally long non-negative integer code arrays, one axis each."""
    codes = [_to_numpy(c).ravel() for c in codes]
    if not codes or len({len(c) for c in codes}) != 1 or len(codes[0]) == 0:
        raise ConfigError(f"need non-empty code arrays of equal length; got lengths {[len(c) for c in codes]}")
    if any(not np.issubdtype(c.dtype, np.integer) or c.min() < 0 for c in codes):
        raise ConfigError("codes must be non-negative integers")
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
    10,000 x 1,000, and on the ground-truth cases of pidkd.synthetic it changed interval widths by
    under a third except where the clusters were fewer than the states (benchmarks/bootstrap_coverage.py).
    """
    if not len(t) == len(s) == len(y):
        raise ConfigError(f"t, s and y must have one row per example; got {len(t)}, {len(s)}, {len(y)}")
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
    its estimate, and their own range would exclude 0 (on the ground-truth cases it excluded the true 0
    of Red in 100% of data sets; the reflected interval in none).
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
    """The measurement of ``p`` from n examples: a ConfigError when n is below the histogram's cells
    (unless ``allow_few``), an EstimateWarning when its bias bound is above BIAS_SHARE of I(Y; T, S)."""
    k_t, k_s, classes = _occupied(p)
    needed = math.ceil(plug_in_bias(k_t, k_s, classes, 1) / BIAS_TARGET)
    if n < k_t * k_s * classes and not allow_few:
        raise ConfigError(
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
    """A ConfigError unless ``bootstrap`` is 0 or a whole number of at least MIN_RESAMPLES."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or (
        bootstrap != 0 and bootstrap < MIN_RESAMPLES
    ):
        raise ConfigError(
            f"bootstrap must be 0 (no intervals) or a whole number of resamples >= {MIN_RESAMPLES}, e.g. 200; "
            f"got {bootstrap!r}"
        )


def teacher_student_mi(
    t: Any, s: Any, n_clusters: int = N_CLUSTERS, n_components: int = N_COMPONENTS, seed: int = 0
) -> float:
    """I(T; S) in bits between discretized teacher and student features (what VID drives up)."""
    return mutual_information(
        joint_distribution(discretize(t, n_clusters, n_components, seed), discretize(s, n_clusters, n_components, seed))
    )


def label_mi(
    x: Any, y: Any, n_clusters: int = N_CLUSTERS, n_components: int = N_COMPONENTS, seed: int = 0
) -> float:
    """I(Y; X) in bits between labels and discretized features, e.g. I(Y; T) or I(Y; S)."""
    labels = _label_codes(y)
    if len(x) != len(labels):
        raise ConfigError(f"x and y must have one row per example; got {len(x)} and {len(labels)}")
    return mutual_information(joint_distribution(discretize(x, n_clusters, n_components, seed), labels))


def _mi_bits(p_xy: np.ndarray) -> float:
    """I(X; Y) in bits of a checked 2-D joint distribution."""
    outer = p_xy.sum(axis=1, keepdims=True) * p_xy.sum(axis=0, keepdims=True)
    nz = p_xy > 0
    return max(float(np.sum(p_xy[nz] * np.log(p_xy[nz] / outer[nz]))) / _LN2, 0.0)


# _one_thread: the dense algebra here is small, and BLAS / OpenMP threads spinning on it slow it
# down instead: on 2 busy cores a 20x20x10 solve took 1.0 s with 2 BLAS threads and 0.08 s with
# one, discretizing 2000 examples 1.0 s and 0.2 s. Hence threadpool_limits(1) around both.


def _to_numpy(x: Any) -> np.ndarray:
    """A numpy view of an array or a (possibly GPU, autograd-tracked) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _label_codes(y: Any) -> np.ndarray:
    """Class indices (any integers, or bools) as codes 0..k-1; other labels are refused: float ones
    would each count as a class of their own."""
    y = _to_numpy(y)
    if y.ndim != 1 or len(y) == 0:
        raise ConfigError(f"y must be a non-empty 1-D array of labels; got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ConfigError(f"y must hold class indices (an integer or bool array), not {y.dtype}: pass y.astype(int) "
                          f"if they are whole numbers, else np.unique(y, return_inverse=True)[1]")
    return np.unique(y, return_inverse=True)[1].astype(np.int64)


def _check_distribution(p: Any, axes: tuple[str, ...], normalize: bool) -> np.ndarray:
    """``p`` as a float array over ``axes`` summing to 1, or a ConfigError saying what is wrong."""
    p = _to_numpy(p)
    name = f"p[{', '.join(axes)}]"
    if p.ndim != len(axes):
        raise ConfigError(f"{name} must have {len(axes)} dimensions; got shape {p.shape}")
    if p.size == 0:
        raise ConfigError(f"{name} is empty (shape {p.shape})")
    if not (np.issubdtype(p.dtype, np.number) or p.dtype == bool) or np.iscomplexobj(p):
        raise ConfigError(f"{name} must hold real numbers; got dtype {p.dtype}")
    p = p.astype(np.float64)
    if np.isnan(p).any():
        raise ConfigError(f"{name} contains NaN")
    if np.isinf(p).any():
        raise ConfigError(f"{name} contains infinite entries")
    if (p < 0).any():
        raise ConfigError(f"{name} has negative entries (smallest {p.min():g})")
    total = p.sum()
    if normalize:
        if total <= 0:
            raise ConfigError(f"{name} is all zeros; there is nothing to normalise")
        return p / total
    if abs(total - 1.0) > TOTAL_TOL:
        raise ConfigError(
            f"{name} sums to {float(total)!r}, not 1 (tolerance {TOTAL_TOL:g}); pass normalize=True for counts"
        )
    return p


# The solver, in nats. Q lives on the support {(t, s, y): P(t, y) > 0 and P(s, y) > 0}, stored as
# a dense (T, S, Y) array that is zero elsewhere. The convex program is
#     minimise F(Q) = sum Q log Q(y | t, s)  (= I_Q(Y; T, S) - H(Y))
#     subject to  sum_s Q = P(t, y),  sum_t Q = P(s, y),  Q >= 0,
# with multipliers lam[t, y], mu[s, y] for the marginals. Its dual is
#     maximise sum lam P(t, y) + sum mu P(s, y)  subject to  logsumexp_y(lam[t, y] + mu[s, y]) <= 0,
# and shifting lam by the largest violation turns any (lam, mu) into a lower bound on min F.


def _minimise_mi(
    p_ty: np.ndarray, p_sy: np.ndarray, tol: float, stall_gap: float, bounds: tuple[float, float]
) -> tuple[float, float]:
    """Upper and lower bounds, in nats, on min F(Q) over Q with marginals p_ty, p_sy: at most
    ``tol`` apart, or at most ``stall_gap`` where rounding stalled the iterations first.
    ``bounds`` are bounds on the minimum known beforehand.

    Path following on the log barrier: Newton steps with an Armijo line search on
    F(Q) - tau * sum log Q over the feasible Q, and tau divided by _KAPPA whenever the iterate is
    close to the barrier's minimiser. There the Newton multipliers are nearly dual feasible and
    give a lower bound, and Q, rescaled onto the exact marginals, an upper bound.
    """
    support = (p_ty[:, None, :] > 0) & (p_sy[None, :, :] > 0)
    n = int(support.sum())
    q = np.where(support, p_ty[:, None, :] * p_sy[None, :, :] / p_ty.sum(axis=0), 0.0)  # P(t|y)P(s|y)P(y)
    lower, upper = bounds
    tau = (upper - lower) / n
    progress, since_progress, decrease = math.inf, 0, math.inf
    for _ in range(_MAX_NEWTON):
        log_cond = _log_conditional(q, support)
        q_safe = np.where(support, q, 1.0)
        solve = _newton_solver(q, tau, p_ty, p_sy, support)
        gradient = np.where(support, log_cond - tau / q_safe, 0.0)
        lam, mu, dq = solve(-gradient)
        lower = max(lower, _dual_bound(lam, mu, p_ty, p_sy, support))
        decrement = -float(np.sum(gradient * dq))  # squared Newton decrement; once rounding blurs it,
        centred = min(decrement, decrease / _CENTRED) <= _CENTRED * n * tau  # the merit stops falling
        if centred or float(np.sum(q * log_cond)) - lower <= tol:
            upper = min(upper, _objective(_restore_marginals(q, p_ty, p_sy), support))
            if upper - lower <= tol:
                break
        if centred:
            tau /= _KAPPA  # and step towards the new target with the same factorisation
            gradient = np.where(support, log_cond - tau / q_safe, 0.0)
            lam, mu, dq = solve(-gradient)
        if upper - lower < progress / 2:
            progress, since_progress = upper - lower, 0
        elif upper - lower <= stall_gap and n * tau < _STALL_TAU * tol:  # only rounding can hold it up
            since_progress += 1
            if since_progress == _STALL_ITERATIONS:
                break
        q, decrease = _line_search(q, dq, gradient, tau, support)
        if np.max(np.abs(q.sum(axis=1) - p_ty)) > _DRIFT:
            q = _restore_marginals(q, p_ty, p_sy)
    return upper, lower


def _line_search(
    q: np.ndarray, dq: np.ndarray, gradient: np.ndarray, tau: float, support: np.ndarray
) -> tuple[np.ndarray, float]:
    """Q + alpha dQ with the largest alpha <= 1 (halving) that keeps Q > 0 and decreases the barrier
    enough (Armijo), and the decrease."""
    alpha = min(1.0, _STEP_TO_BOUNDARY * _max_step(q, dq))
    merit = _barrier(q, support, tau)
    slope = float(np.sum(gradient * dq))
    while (trial := _barrier(q + alpha * dq, support, tau)) > merit + _ARMIJO * alpha * slope and alpha > _MIN_STEP:
        alpha /= 2
    return q + alpha * dq, max(merit - trial, 0.0)


def _objective(q: np.ndarray, support: np.ndarray) -> float:
    """F(Q) = sum Q log Q(y | t, s) = I_Q(Y; T, S) - H(Y), in nats."""
    return float(np.sum(q * _log_conditional(q, support)))


def _restore_marginals(q: np.ndarray, p_ty: np.ndarray, p_sy: np.ndarray, sweeps: int = 100) -> np.ndarray:
    """Q rescaled per label (iterative proportional fitting) until its marginals match to rounding;
    the iterates drift from them by the error of the Newton solves."""
    for _ in range(sweeps):
        q = q * np.divide(p_ty, q.sum(axis=1), out=np.zeros_like(p_ty), where=p_ty > 0)[:, None, :]
        q = q * np.divide(p_sy, q.sum(axis=0), out=np.zeros_like(p_sy), where=p_sy > 0)[None, :, :]
        if np.max(np.abs(q.sum(axis=1) - p_ty)) <= 1e-15:
            break
    return q


def _cholesky(m: np.ndarray) -> np.ndarray:
    """Cholesky factor of (a stack of) symmetric positive semi-definite matrices; rounding near
    the optimum can make them numerically indefinite, so retry with a growing diagonal shift."""
    shift = 0.0
    while True:
        try:
            return np.linalg.cholesky(m + shift * np.eye(m.shape[-1]) if shift else m)
        except np.linalg.LinAlgError:
            scale = float(np.max(np.diagonal(m, axis1=-2, axis2=-1)))
            shift = 1e-14 * scale if shift == 0.0 else shift * 100.0


def _log_conditional(q: np.ndarray, support: np.ndarray) -> np.ndarray:
    """log Q(y | t, s) on the support, 0 elsewhere."""
    ratio = np.divide(q, q.sum(axis=2, keepdims=True), out=np.ones_like(q), where=support)
    return np.log(ratio, out=np.zeros_like(q), where=support)


def _barrier(q: np.ndarray, support: np.ndarray, tau: float) -> float:
    """F(Q) - tau * sum log Q, infinite outside Q > 0."""
    if np.any(q[support] <= 0):
        return math.inf
    return _objective(q, support) - tau * float(np.sum(np.log(q[support])))


def _dual_bound(lam: np.ndarray, mu: np.ndarray, p_ty: np.ndarray, p_sy: np.ndarray, support: np.ndarray) -> float:
    """Lower bound on min F from any multipliers: the dual objective after the feasibility shift."""
    scores = np.where(support, lam[:, None, :] + mu[None, :, :], -np.inf)
    blocks = support.any(axis=2)
    violation = float(np.max(logsumexp(scores[blocks], axis=1)))
    return float(np.sum(lam * p_ty) + np.sum(mu * p_sy)) - violation


def _max_step(v: np.ndarray, dv: np.ndarray) -> float:
    """Largest step in [0, 1] keeping v + step * dv >= 0."""
    shrinking = dv < 0
    if not shrinking.any():
        return 1.0
    return min(1.0, float(np.min(-v[shrinking] / dv[shrinking])))


def _newton_solver(q: np.ndarray, tau: float, p_ty: np.ndarray, p_sy: np.ndarray, support: np.ndarray):
    """Factor the Newton system of the barrier at Q; return rhs -> (lam, mu, dq) solving

        H dq - A^T (lam, mu) = rhs,   A dq = p - A Q (the marginal residual),

    with H the Hessian of F(Q) - tau sum log Q, block diagonal over (t, s) as
    diag(1 / q + tau / q^2) - 1 1^T / q(t, s). Each block is inverted by Sherman-Morrison; the
    multipliers of t are eliminated (block diagonal over t), leaving a dense Cholesky system over
    (s, y). One mu(s, y) per label is pinned to 0: the constraints' (lam + c_y, mu - c_y) gauge
    would make that system singular.
    """
    n_t, n_s, n_y = q.shape
    diag_y = np.arange(n_y)
    v = np.where(support, q * q / (q + tau), 0.0)  # the inverse of H's diagonal
    den = np.sum(tau * q / (q + tau), axis=2)  # q(t, s) - sum v > 0: Sherman-Morrison denominator
    sig = np.divide(1.0, den, out=np.zeros_like(den), where=den > 0)
    sv = sig[:, :, None] * v
    a = sv.transpose(0, 2, 1) @ v  # (t, y, y'): sum_s sig v v^T
    a[:, diag_y, diag_y] += v.sum(axis=1) + (p_ty <= 0)
    c = sv.transpose(1, 2, 0) @ v.transpose(1, 0, 2)  # (s, y, y')
    c[:, diag_y, diag_y] += v.sum(axis=0)
    pinned = p_sy <= 0
    pinned[np.argmax(p_sy, axis=0), diag_y] = True
    v_free = np.where(pinned, 0.0, v)  # columns of the pinned mu(s, y) dropped
    inv_chol_a = np.linalg.inv(_cholesky(a))
    # w = inv_chol_a[t] @ (cross block of t), with cross[t, y, s, y'] = delta(y, y') v + sig v v^T
    w = inv_chol_a[:, :, None, :] * v_free[:, None, :, :]
    w += np.einsum("tyx,tsx->tys", inv_chol_a, sv)[:, :, :, None] * v_free[:, None, :, :]
    w = w.reshape(n_t * n_y, n_s * n_y)
    schur = w.T @ w
    np.negative(schur, out=schur)
    schur.reshape(n_s, n_y, n_s, n_y)[np.arange(n_s), :, np.arange(n_s), :] += c
    pinned = pinned.ravel()
    schur[pinned, :] = 0.0
    schur[:, pinned] = 0.0
    schur[pinned, pinned] = 1.0
    chol_s = _cholesky(schur)
    def h_inv(r: np.ndarray) -> np.ndarray:
        vr = v * r
        return vr + (sig * vr.sum(axis=2))[:, :, None] * v

    def solve_once(rhs: np.ndarray, r_ty: np.ndarray, r_sy: np.ndarray):
        h = h_inv(rhs)
        u = np.einsum("tyz,tz->ty", inv_chol_a, r_ty - h.sum(axis=1))
        rhs_s = (r_sy - h.sum(axis=0)).ravel() - w.T @ u.ravel()
        rhs_s[pinned] = 0.0
        mu = solve_triangular(chol_s, solve_triangular(chol_s, rhs_s, lower=True), lower=True, trans="T")
        u -= (w @ mu).reshape(n_t, n_y)
        lam = np.einsum("tzy,tz->ty", inv_chol_a, u)
        lam[p_ty <= 0] = 0.0
        mu = mu.reshape(n_s, n_y)
        return lam, mu, np.where(support, h_inv(rhs + lam[:, None, :] + mu[None, :, :]), 0.0)

    def solve(rhs: np.ndarray):
        """Solve once, then once more for what the rounding left of the marginal residual."""
        r_ty = p_ty - q.sum(axis=1)
        r_sy = p_sy - q.sum(axis=0)
        lam, mu, dq = solve_once(rhs, r_ty, r_sy)
        fix = solve_once(np.zeros_like(rhs), r_ty - dq.sum(axis=1), r_sy - dq.sum(axis=0))
        return lam + fix[0], mu + fix[1], dq + fix[2]

    return solve
