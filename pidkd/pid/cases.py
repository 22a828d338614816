"""Ground truth for ``pid.measure``: generative models whose PID is known exactly at the level of
discrete latents (T, S, Y), embedded into continuous, high-dimensional features the way a network's
representations reach ``measure``, and a study of how far ``measure`` lands from the truth.

A case is a joint distribution p[t, s, y] of latent states; its truth is ``broja_pid(p)``. Each
latent state of T (and of S) becomes a vertex of a regular simplex (every pair ``SEPARATION``
apart), jittered by Gaussian noise, mapped into ``dim`` dimensions by a seeded random linear map or
a small tanh MLP, plus Gaussian noise of the same level in every dimension. The noise blurs the
states into one another, so the features hold less than the latents: ``study`` shows by how much.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from .decomposition import PID, broja_pid
from .distributions import CANONICAL
from .errors import InputError, check_name
from .estimator import cluster_codes, measure_codes, principal_components

if TYPE_CHECKING:
    import pandas as pd

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


ESTIMATORS = ("plug-in", "control-subtracted")


def study(
    cases: Iterable[str] = tuple(CASES),
    n_samples: Iterable[int] = (250, 1000, 5000, 20000),
    n_clusters: Iterable[int] = (5, 10, 20),
    n_components: Iterable[int] = (5, 10),
    noises: Iterable[float] = (0.25, 0.5, 1.0),
    mappings: Iterable[str] = ("linear",),
    repeats: int = 3,
    dim: int = 256,
    progress: bool = True,
) -> pd.DataFrame:
    """``measure``'s error against the latent truth over a grid of settings, as a tidy frame: one row
    per case, mapping, n, noise, repeat, n_components, n_clusters, estimator (plug-in, or with the
    shuffled-label control subtracted) and term, with its estimate, truth and error in bits. Each
    data set is discretized as ``measure`` does it (seed 0), its PCA shared by the cluster counts. The
    study exists to show the plug-in bias of few examples, so it measures below the sample counts that
    ``measure`` refuses, and without its warnings (``allow_few``, ``warn=False``)."""
    import pandas as pd  # here: only the study needs a frame

    cases = [CASES[check_name("case", name, CASES)] for name in cases]
    n_clusters, n_components = list(n_clusters), list(n_components)
    grid = list(itertools.product(cases, mappings, n_samples, noises, range(repeats)))
    rows = []
    for case, mapping, n, noise, repeat in _progress_bar(grid, progress, desc="measure on ground truth"):
        t, s, y = features(case, n, noise, dim, mapping, seed=repeat)
        truth = case.truth
        for components in n_components:
            z_t, z_s = principal_components(t, components), principal_components(s, components)
            for clusters in n_clusters:
                codes_t, codes_s = cluster_codes(z_t, clusters), cluster_codes(z_s, clusters)
                plug_in, control = (measure_codes(codes_t, codes_s, y, control=c, warn=False, allow_few=True)
                                    for c in (False, True))
                for term in TERMS:
                    estimates = getattr(plug_in, term), getattr(plug_in, term) - getattr(control, term)
                    for estimator, estimate in zip(ESTIMATORS, estimates):
                        rows.append({"case": case.name, "mapping": mapping, "n": n, "noise": noise, "repeat": repeat,
                                     "n_components": components, "n_clusters": clusters, "estimator": estimator,
                                     "term": term, "estimate": estimate, "truth": getattr(truth, term),
                                     "error": estimate - getattr(truth, term)})
    return pd.DataFrame(rows)


def _progress_bar(iterable: Iterable, enabled: bool, **options: Any) -> Any:
    """A tqdm bar over ``iterable``, silent when not ``enabled``, as ``pidkd.train.progress_bar`` (which the
    pid layer may not import): ``disable`` is only passed to silence it, so ``TQDM_DISABLE=1`` still applies."""
    from tqdm import tqdm

    return tqdm(iterable, **options) if enabled else tqdm(iterable, disable=True, **options)
