"""The log-barrier path-following solver behind ``broja_pid``: the minimum of I_Q(Y; T, S) - H(Y)
over the Q with given (t, y) and (s, y) marginals, in nats, bracketed by a certified duality gap.

The constraints are one transportation polytope per label y, so each Newton step costs one dense
Cholesky factorisation of size min(|T|, |S|) * |Y|.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

_MAX_NEWTON = 100
_KAPPA = 10.0  # factor by which the barrier weight tau shrinks
_CENTRED = 0.25  # move tau on once the squared Newton decrement is below this * n * tau
_STALL_ITERATIONS = 8  # give up on tol once the gap has not halved in this many iterations
_STALL_TAU = 1e-3  # ... and the barrier weight n * tau is this far below tol
_STEP_TO_BOUNDARY = 0.99
_ARMIJO = 1e-4
_MIN_STEP = 1e-12
_DRIFT = 1e-9  # an iterate whose marginals drift this far (rounding) is pulled back onto them


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
