"""Ground truth for ``pid.measure``: generative models whose PID is known exactly at the level of
discrete latents (T, S, Y), embedded into continuous, high-dimensional features the way a network's
representations reach ``measure`` (:mod:`pidkd.study.trust` measures how far it lands from the truth).

A case is a joint distribution p[t, s, y] of latent states; its truth is ``broja_pid(p)``. Each
latent state of T (and of S) becomes a vertex of a regular simplex (every pair ``SEPARATION``
apart), jittered by Gaussian noise, mapped into ``dim`` dimensions by a seeded random linear map or
a small tanh MLP, plus Gaussian noise of the same level in every dimension. The noise blurs the
states into one another, so the features hold less than the latents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .decomposition import PID, broja_pid
from .distributions import CANONICAL
from .errors import InputError, check_name

SEPARATION = 4.0  # distance between any two latent states' codes; noise 1 then confuses a pair 2.3% of the time
MAPPINGS = ("linear", "mlp")
TERMS = ("red", "uni_t", "uni_s", "syn")
_HIDDEN = 64  # width of the MLP map


@dataclass(frozen=True)
class Case:
    """A ground-truth case: latent teacher states T, student states S and labels Y with joint p[t, s, y]."""

    name: str
    description: str
    p: np.ndarray

    @property
    def truth(self) -> PID:
        """The exact PID of the latents, in bits."""
        return broja_pid(self.p)


def _joint(outcomes: Iterable[tuple[int, int, int, float]]) -> np.ndarray:
    """p[t, s, y] from (t, s, y, probability) outcomes."""
    outcomes = list(outcomes)
    p = np.zeros(tuple(1 + max(o[i] for o in outcomes) for i in range(3)))
    for t, s, y, weight in outcomes:
        p[t, s, y] += weight
    return p


def _channel(n: int, error: float) -> np.ndarray:
    """A symmetric channel on n symbols: right with probability 1 - error, else uniformly wrong."""
    return np.full((n, n), error / (n - 1)) + np.eye(n) * (1 - error - error / (n - 1))


def _cases() -> dict[str, Case]:
    y4 = range(4)
    t_channel, s_channel = _channel(4, 0.1), _channel(4, 0.3)
    cases = [
        Case("label_and_nuisance", "T = (Y, N) with a nuisance bit N, S = Y: all of I(Y; T) is redundant (1 bit)",
             _joint((2 * y + n, y, y, 0.25) for y in (0, 1) for n in (0, 1))),
        Case("nuisance_teacher", "T = N independent of Y (4 states), S = Y (4 classes): the untrained teacher",
             _joint((n, y, y, 1 / 16) for y in y4 for n in y4)),
        Case("xor", "T, S uniform bits, Y = T xor S: pure synergy (1 bit)", CANONICAL["XOR"].p),
        Case("noisy_channels", "Y of 4 classes seen through independent channels, T wrong 10% and S 30% of the "
             "time: partial redundancy", _joint((t, s, y, 0.25 * t_channel[y, t] * s_channel[y, s])
                                                for y in y4 for t in y4 for s in y4)),
        Case("ten_classes", "Y of 10 classes, T = Y, S = Y // 2: more teacher states than the paper's 5 clusters "
             "(Red log2 5, Uni(T\\S) 1 bit)", _joint((y, y // 2, y, 0.1) for y in range(10))),
    ]
    return {case.name: case for case in cases}


CASES: dict[str, Case] = _cases()
"""The ground-truth cases by name."""


def sample_latents(case: Case, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` independent draws of the latent (t, s, y) from ``case.p``."""
    cells = rng.choice(case.p.size, size=n, p=case.p.ravel())
    t, s, y = np.unravel_index(cells, case.p.shape)
    return t, s, y


def embed(
    states: np.ndarray, n_states: int, noise: float, dim: int, mapping: str,
    population: np.random.Generator, rng: np.random.Generator,
) -> np.ndarray:
    """Features (len(states), dim) of latent states: simplex codes plus noise, through a random map
    drawn from ``population`` (fixed per population), plus noise in every dimension drawn from ``rng``."""
    codes = np.eye(n_states) * SEPARATION / np.sqrt(2)
    basis = np.linalg.qr(population.normal(size=(dim, _HIDDEN if mapping == "mlp" else n_states)))[0].T
    z = codes[states] + noise * rng.normal(size=(len(states), n_states))
    if mapping == "mlp":
        weights, bias = population.normal(size=(n_states, _HIDDEN)) / SEPARATION, population.normal(size=_HIDDEN)
        hidden = np.tanh(codes @ weights + bias)
        distances = np.linalg.norm(hidden[:, None] - hidden[None], axis=2)[~np.eye(n_states, dtype=bool)]
        scale = SEPARATION / distances.mean()
        z = scale * np.tanh(z @ weights + bias)  # the states' codes as far apart on average as the linear map's
    return z @ basis + noise * rng.normal(size=(len(states), dim))


def features(
    case: Case, n: int, noise: float = 0.5, dim: int = 256, mapping: str = "linear", seed: int = 0, population: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` examples of (teacher features, student features, labels) of ``case``: ``population``
    seeds the maps (the same population for every ``seed``), ``seed`` the examples and their noise."""
    check_name("mapping", mapping, MAPPINGS)
    width = max(case.p.shape[:2]) if mapping == "linear" else _HIDDEN
    if n < 1 or dim < width or not noise >= 0:
        raise InputError(f"need n >= 1, dim >= {width} (the {mapping} map's width) and noise >= 0; "
                         f"got n={n}, dim={dim}, noise={noise}")
    rng = np.random.default_rng([seed, population])
    maps = np.random.default_rng(population)
    n_t, n_s, _ = case.p.shape
    t, s, y = sample_latents(case, n, rng)
    return embed(t, n_t, noise, dim, mapping, maps, rng), embed(s, n_s, noise, dim, mapping, maps, rng), y
