"""An independent BROJA oracle for tests and benchmarks: cvxpy's exponential-cone program solved
by Clarabel. Exact but slow; never used by pidkd itself."""
from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import scipy.sparse as sparse

from pidkd.pid import mutual_information


def oracle_pid(p: np.ndarray) -> dict[str, float]:
    """BROJA PID by cvxpy's exponential-cone form of min I_Q(Y; T, S), solved by Clarabel.

    Independent of pidkd's solver: the objective is sum rel_entr(Q, Q(t, s)) on the support
    {P(t, y) > 0, P(s, y) > 0}, with the (t, y) and (s, y) marginals as linear constraints.
    """
    n_t, n_s, n_y = p.shape
    p_ty, p_sy, p_y = p.sum(axis=1), p.sum(axis=0), p.sum(axis=(0, 1))
    t, s, y = np.argwhere((p_ty[:, None, :] > 0) & (p_sy[None, :, :] > 0)).T
    n = len(t)

    def incidence(rows: np.ndarray, n_rows: int) -> sparse.csr_matrix:
        return sparse.csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(n_rows, n))

    block = incidence(t * n_s + s, n_t * n_s)
    q = cp.Variable(n, nonneg=True)
    problem = cp.Problem(
        cp.Minimize(cp.sum(cp.rel_entr(q, (block.T @ block) @ q))),
        [incidence(t * n_y + y, n_t * n_y) @ q == p_ty.ravel(), incidence(s * n_y + y, n_s * n_y) @ q == p_sy.ravel()],
    )
    problem.solve(solver=cp.CLARABEL)
    assert problem.status == cp.OPTIMAL, problem.status
    h_y = -np.sum(p_y[p_y > 0] * np.log2(p_y[p_y > 0]))
    mi_q = h_y + problem.value / math.log(2)
    mi, mi_t, mi_s = (mutual_information(m) for m in (p.reshape(-1, n_y), p_ty, p_sy))
    return {"red": mi_t + mi_s - mi_q, "uni_t": mi_q - mi_s, "uni_s": mi_q - mi_t, "syn": mi - mi_q}
