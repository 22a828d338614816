"""The pid layer: the BROJA partial information decomposition of discrete distributions, and measuring
it on representations, Red(Y: T, S) and Uni(Y: T \\ S), the quantities the paper argues with.

It imports nothing else of pidkd. ``decomposition`` holds what is measured (``broja_pid``, ``PID``),
``solver`` how its convex program is optimised, ``estimator`` how representations become a distribution
(``measure``), ``distributions`` the canonical examples with known parts, and ``cases`` (imported on
its own: ``from pidkd.pid import cases``) ground-truth representations whose decomposition is known.
"""
from .decomposition import PID, TOTAL_TOL, Measurement, broja_pid, mutual_information
from .distributions import AND_RED, CANONICAL, Canonical
from .errors import EstimateWarning, InputError
from .estimator import (
    BIAS_SHARE,
    BIAS_TARGET,
    INTERVAL_TERMS,
    MIN_RESAMPLES,
    N_CLUSTERS,
    N_COMPONENTS,
    bootstrap_intervals,
    cluster_codes,
    discretize,
    joint_distribution,
    label_mi,
    measure,
    measure_codes,
    plug_in_bias,
    principal_components,
)

__all__ = [
    "AND_RED", "BIAS_SHARE", "BIAS_TARGET", "CANONICAL", "INTERVAL_TERMS", "MIN_RESAMPLES", "N_CLUSTERS",
    "N_COMPONENTS", "PID", "TOTAL_TOL", "Canonical", "EstimateWarning", "InputError", "Measurement",
    "bootstrap_intervals", "broja_pid", "cluster_codes", "discretize", "joint_distribution", "label_mi", "measure",
    "measure_codes", "mutual_information", "plug_in_bias", "principal_components",
]
