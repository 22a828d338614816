"""pidkd: a reproducible companion to "Quantifying Knowledge Distillation Using Partial
Information Decomposition" (AISTATS 2025)."""

__version__ = "0.1.0"
