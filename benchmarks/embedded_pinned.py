"""Short embedded runs of every method under the trained and the untrained teacher, their per-epoch
losses and accuracies written to (or compared with) a JSON file: evidence that the embedded profile's
numbers do not move when options that it pins are added to pidkd.

    PIDKD_THREADS=1 PYTHONPATH=. python benchmarks/embedded_pinned.py --save before.json   # on the old commit
    PIDKD_THREADS=1 PYTHONPATH=. python benchmarks/embedded_pinned.py --check before.json  # on the new one

The runs are the embedded profile's with 30 MNIST-1D signals a class, a 2-epoch teacher and 8-epoch
students (the rate x0.2 at epochs 4 and 6; RID in 2 rounds of 4 epochs, so its second filter phase has the matching term); they
go to a temporary results folder. ``--check`` fails unless every number is bit-for-bit equal.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

OVERRIDES = {
    "teacher_training.epochs": 2,
    "student_training.epochs": 8,
    "datasets.mnist1d.samples_per_class": 30,
    "student_training.recipe.milestones": [4, 6],
    "student_training.pid_epochs": [],
    "methods.rid.rounds": 2,
}
COLUMNS = ("phase", "train_loss", "test_acc")


def losses() -> dict[str, list[dict]]:
    """Each run's per-epoch phase, training loss and test accuracy, by teacher and method."""
    from pidkd.study import experiment
    from pidkd.study.profiles import Profile

    profile = Profile.load("embedded", OVERRIDES)
    out = {}
    for teacher in ("trained", "untrained"):
        for method in ("baseline", "kd", "vid", "rid", "ted"):
            metrics = experiment.run(profile.config("mnist1d", teacher, method, 0), device="cpu", progress=False).metrics
            out[f"{teacher}/{method}"] = metrics[list(COLUMNS)].to_dict("records")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path)
    group.add_argument("--check", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as results:
        os.environ["PIDKD_RESULTS"] = results
        now = losses()
    if args.save:
        args.save.write_text(json.dumps(now, indent=1))
        return 0
    before = json.loads(args.check.read_text())
    changed = [run for run in before if json.dumps(before[run]) != json.dumps(now[run])]  # NaN-safe
    for run in before:
        print(f"{run:20s} {'CHANGED' if run in changed else 'identical'}: "
              f"final loss {now[run][-1]['train_loss']!r}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
