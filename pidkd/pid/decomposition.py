"""The BROJA partial information decomposition of a discrete distribution p[t, s, y], in bits:
Red(Y: T, S), Uni(Y: T \\ S), Uni(Y: S \\ T) and Syn(Y: T, S), the result types, and I(X; Y).

The decomposition needs the minimum of I_Q(Y; T, S) over the distributions Q with P's (t, y)
and (s, y) marginals, a convex program; ``solver`` solves it and certifies the result by a duality gap.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .errors import InputError
from .solver import _minimise_mi

logger = logging.getLogger(__name__)

TOTAL_TOL = 1e-9  # how far from 1 the total of a distribution may be
_LN2 = math.log(2.0)
_NEGLIGIBLE = 1e-12  # probabilities below this count as 0: that moves each part by about m log2(1/m)
# bits for their total m (4e-10 for ten of them); their logs would take the solver past double precision
_ACCEPTABLE_GAP = 1e-4  # bits; a solve stalled by rounding this close is returned with a warning


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



def broja_pid(p: Any, normalize: bool = False, tol: float = 1e-7) -> PID:
    """BROJA decomposition of a joint distribution ``p[t, s, y]``, in bits.

    ``normalize=True`` accepts counts. ``tol`` is the certified duality gap, in bits, at which the
    solver stops: every part is then within ``tol`` of its exact value (probabilities below 1e-12
    count as 0). Zero rows, columns and labels are allowed.
    """
    p = _check_distribution(p, ("t", "s", "y"), normalize)
    if not tol > 0:
        raise InputError(f"tol must be positive; got {tol}")
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


def _mi_bits(p_xy: np.ndarray) -> float:
    """I(X; Y) in bits of a checked 2-D joint distribution."""
    outer = p_xy.sum(axis=1, keepdims=True) * p_xy.sum(axis=0, keepdims=True)
    nz = p_xy > 0
    return max(float(np.sum(p_xy[nz] * np.log(p_xy[nz] / outer[nz]))) / _LN2, 0.0)


# _one_thread: the dense algebra of the solver, and of discretizing (PCA, k-means), is small, and BLAS /
# OpenMP threads spinning on it slow it down instead (timings in docs/method.md). Hence threadpool_limits(1)
# around both.


def _to_numpy(x: Any) -> np.ndarray:
    """A numpy view of an array or a (possibly GPU, autograd-tracked) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_distribution(p: Any, axes: tuple[str, ...], normalize: bool) -> np.ndarray:
    """``p`` as a float array over ``axes`` summing to 1, or an InputError saying what is wrong."""
    p = _to_numpy(p)
    name = f"p[{', '.join(axes)}]"
    if p.ndim != len(axes):
        raise InputError(f"{name} must have {len(axes)} dimensions; got shape {p.shape}")
    if p.size == 0:
        raise InputError(f"{name} is empty (shape {p.shape})")
    if not (np.issubdtype(p.dtype, np.number) or p.dtype == bool) or np.iscomplexobj(p):
        raise InputError(f"{name} must hold real numbers; got dtype {p.dtype}")
    p = p.astype(np.float64)
    if np.isnan(p).any():
        raise InputError(f"{name} contains NaN")
    if np.isinf(p).any():
        raise InputError(f"{name} contains infinite entries")
    if (p < 0).any():
        raise InputError(f"{name} has negative entries (smallest {p.min():g})")
    total = p.sum()
    if normalize:
        if total <= 0:
            raise InputError(f"{name} is all zeros; there is nothing to normalise")
        return p / total
    if abs(total - 1.0) > TOTAL_TOL:
        raise InputError(
            f"{name} sums to {float(total)!r}, not 1 (tolerance {TOTAL_TOL:g}); pass normalize=True for counts"
        )
    return p

