"""What holding the last finished epoch in memory costs (so that Ctrl-C or an error loses at most the
epoch it interrupted): a whole embedded run with a checkpoint, which copies its state after every
epoch, against the same run without one, alternately in one process, on one CPU thread.

    python benchmarks/snapshot_cost.py --methods baseline vid --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from run_time import METHOD_PARAMS, data, quick_teacher

from pidkd.distill.loop import fit
from pidkd.distill.methods import METHODS, build_method
from pidkd.distill.models import build_model, feature_positions
from pidkd.distill.settings import Recipe, Speed, resolve_device


def seconds(method_name: str, splits, teacher, epochs: int, checkpoint: bool) -> float:
    """Wall seconds of one embedded run, with or without a checkpoint (and so its snapshots)."""
    train, validation, test = splits
    torch.manual_seed(0)
    student = build_model("wrn1d-10-1", 10, 1, block="post")
    method = build_method(method_name, student_channels=student.feature_channels,
                          teacher_channels=teacher.feature_channels, num_classes=10,
                          feature_positions=feature_positions(student, test[0][0]), **METHOD_PARAMS.get(method_name, {}))
    recipe = Recipe(lr=0.05, milestones=(epochs // 2,), filter_lr=0.2 if method_name in ("rid", "ted") else None)
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        fit(student, method, train, test, recipe=recipe, epochs=epochs, seed=0, teacher=teacher, device="cpu",
            checkpoint=Path(folder) / "checkpoint.pt" if checkpoint else None, progress=False,
            speed=Speed(workers=0), validation_set=validation, evaluate_every=4)
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["baseline", "vid", "rid"], choices=sorted(METHODS))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    resolve_device("cpu", threads=1)
    splits = data(100, 100)
    teacher = quick_teacher("wrn1d-16-2", splits[0])
    print(f"{'method':8} {'with / without checkpoint':>26}  (median of {args.repeats}, {args.epochs} epochs)")
    for name in args.methods:
        ratios = [seconds(name, splits, teacher, args.epochs, True) / seconds(name, splits, teacher, args.epochs, False)
                  for _ in range(args.repeats)]
        print(f"{name:8} {statistics.median(ratios):26.3f}")


if __name__ == "__main__":
    main()
