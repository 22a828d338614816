"""Distillation in torch: datasets, networks, teachers, the methods, the recipe and device
settings, the training loop, and the representations PID is measured on. It knows nothing of
profiles or results folders (:mod:`pidkd.study` does) and imports only :mod:`pidkd.pid` and
:mod:`pidkd.errors` of pidkd."""
