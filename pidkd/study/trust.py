"""Notebook 2's study of the measure: how far ``pid.measure`` lands from the truth on the
ground-truth cases (:mod:`pidkd.pid.cases`), over sample counts, clusters, components and noise."""
from __future__ import annotations

import itertools
from collections.abc import Iterable

import pandas as pd

from ..distill.loop import progress_bar
from ..errors import check_name
from ..pid.cases import CASES, TERMS, features
from ..pid.estimator import cluster_codes, measure_codes, principal_components

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
    chosen = [CASES[check_name("case", name, CASES)] for name in cases]
    n_clusters, n_components = list(n_clusters), list(n_components)
    grid = list(itertools.product(chosen, mappings, n_samples, noises, range(repeats)))
    rows = []
    for case, mapping, n, noise, repeat in progress_bar(grid, progress, desc="measure on ground truth"):
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
