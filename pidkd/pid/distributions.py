"""The canonical PID examples with their decompositions known in closed form (Bertschinger et al. 2014)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .estimator import joint_distribution


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
