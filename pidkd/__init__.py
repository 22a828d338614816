"""pidkd: a reproducible companion to "Quantifying Knowledge Distillation Using Partial
Information Decomposition" (AISTATS 2025), in three layers that import one way only:
:mod:`pidkd.pid` (the measure) <- :mod:`pidkd.distill` (distillation in torch) <- :mod:`pidkd.study`
(profiles, runs, the protocol and the notebooks)."""

__version__ = "0.1.0"
