"""The numbers of the exact end-to-end checks (tests/test_exact_steps.py): a few optimiser steps of
every method through the real experiment (data pipeline, teacher, training loop, evaluation), in
float64 (precision ``fp64``), from the embedded profile shrunk in size only. Written by

    python tests/exact_steps.py --write

into tests/exact_steps.json, which the checks compare with to 1e-9. Rewrite it only on purpose,
when a change is meant to move these numbers (docs/reproducibility.md).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

from pidkd.distill.files import load_checkpoint
from pidkd.distill.representations import representations
from pidkd.distill.settings import Speed
from pidkd.study import experiment
from pidkd.study.identity import Config
from pidkd.study.profiles import Profile

VALUES = Path(__file__).with_name("exact_steps.json")
COMMAND = "python tests/exact_steps.py --write"

OVERRIDES = {
    "datasets.mnist1d.samples_per_class": 3,        # 30 training signals: two steps an epoch, the second short
    "datasets.mnist1d.validation_per_class": 5,
    "teacher_training.samples_per_class": 5,       # the teacher sees more than its students, as in embedded
    "teacher_training.epochs": 2,
    "teacher_training.recipe.batch_size": 16,
    "student_training.epochs": 6,
    "student_training.recipe.batch_size": 16,
    "student_training.recipe.milestones": [3, 4],   # the rate x0.2 at 1/2 and 2/3 of the epochs, as in embedded
    "student_training.pid_epochs": [],
    "methods.rid.rounds": 2,                        # rounds of 3 epochs: 1 filter epoch, then 2 student ones
}
"""The embedded profile shrunk in size: data, epochs, batches, RID's rounds, no saved representations."""

RUNS = (("trained", "baseline"), *((teacher, method) for method in ("kd", "vid", "rid", "ted")
                                   for teacher in ("trained", "untrained")), ("noisy", "vid"), ("noisy", "rid"))
"""(teacher kind, method) of every run checked; the baseline has no teacher."""

SPEED = Speed(precision="fp64")


def configs() -> dict[str, Config]:
    """The checked runs by ``<teacher>/<method>``, the trained teacher's own as ``teacher``, in the
    precision they train in."""
    profile = Profile.load("embedded", OVERRIDES)
    runs = {"teacher": profile.teacher_training("mnist1d", 0),
            **{f"{teacher}/{method}": profile.config("mnist1d", teacher, method, 0) for teacher, method in RUNS}}
    return {name: experiment.in_precision(config, "cpu", SPEED) for name, config in runs.items()}


def fingerprint(root: Path) -> dict:
    """Train every checked run under ``root`` and return, for each, its metrics by epoch and the sums
    and norms of its final network's and method's state (weights and BatchNorm statistics), and the
    sums and norms of each teacher's (clean) features on the test set."""
    runs, checked = {}, configs()
    for name, config in checked.items():
        done = experiment.run(config, root=root, device="cpu", progress=False, speed=SPEED)
        state = load_checkpoint(done.directory / "checkpoint.pt")
        epochs = [{column: value for column, value in row.items()
                   if column != "seconds" and not (isinstance(value, float) and math.isnan(value))}
                  for row in done.metrics.to_dict("records")]
        runs[name] = {"epochs": epochs, "network": _summary(state["student"].values())}
        if state["method"]:  # the baseline has no state of its own
            runs[name]["method"] = _summary(state["method"].values())
    teachers = {}
    test = experiment.test_set("mnist1d")
    for kind in ("trained", "untrained"):
        teacher = experiment.make_teacher(checked[f"{kind}/kd"].teacher, "mnist1d", root=root, device="cpu",
                                          progress=False, speed=SPEED).to(torch.float64)
        teachers[kind] = [_summary([f]) for f in representations(teacher.model, test, torch.device("cpu"))]
    return {"command": COMMAND, "overrides": OVERRIDES, "runs": runs, "teacher_features": teachers}


def _summary(tensors) -> dict[str, float]:
    """The sum and the Euclidean norm of every floating-point entry of ``tensors``, in float64."""
    values = torch.cat([t.detach().double().flatten() for t in tensors if t.is_floating_point()])
    return {"sum": values.sum().item(), "norm": values.norm().item()}


def compute() -> dict:
    """:func:`fingerprint` in a temporary results folder."""
    with tempfile.TemporaryDirectory() as root:
        return fingerprint(Path(root))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help=f"rewrite {VALUES.name} (only when a number is meant to change)")
    if not parser.parse_args().write:
        parser.error("pass --write to rewrite the committed values; pytest tests/test_exact_steps.py checks them")
    import pidkd

    VALUES.write_text(json.dumps(compute(), indent=1) + "\n")
    print(f"wrote {VALUES} with pidkd from {Path(pidkd.__file__).parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
