"""Where the time of a whole embedded run goes, and what the speed options save, on one CPU thread.

    python benchmarks/run_time.py                               # every method, the embedded setting
    python benchmarks/run_time.py --methods vid rid --compare   # and old against new, bitwise checked
    python benchmarks/run_time.py --flops                       # and the share of the core's rate reached
    python benchmarks/run_time.py --flops --study results/embedded/runs.csv   # and the whole study's share

Each method trains the embedded nets (``--teacher`` -> ``--student``, post-activation) on
``--samples-per-class`` MNIST-1D examples a class with the embedded recipe (SGD 0.05, x0.2 at
1/2 and 2/3 of the epochs, clipping 100 and RID's filter at 0.2 for the distillation methods),
evaluating a validation split and the test split, with a checkpoint, as a grid run does. Timers around the parts of ``pidkd.distill.loop.fit``
split a run into: the student's forward pass in training, the method's own forward pass (VID's
regressors, RID's filters, the loss), backward pass and optimiser step (clipping included),
the per-epoch evaluation, checkpoints, the teacher's outputs (computed once a run), and the
rest (batching, the loop). ``--compare`` also trains each method the old way (evaluation after
every epoch, a checkpoint after every epoch) alternately with the new way (``--evaluate-every``,
checkpoints at most once a minute), reports the ratio of their wall times, and checks that the
two give bitwise-equal students. ``--flops`` counts each run's floating-point operations (those of
matrix products and convolutions, forward and backward, evaluation included: torch's
``FlopCounterMode``) and sets its rate, operations over wall seconds, against what one thread's
float32 matrix products reach in the same process: the share of the core a run uses. ``--study``
also measures a teacher's training the same way (two epochs of the embedded teacher's recipe on
its 680 signals a class) and weighs each kind of run's share by the training seconds the study's
runs of that kind took (``runs.csv``): the share of the cores the study's training used.

The teacher is trained for a few epochs first: speed does not depend on its weights, and no
accuracy is printed.
"""
from __future__ import annotations

import argparse
import collections
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import pidkd.distill.loop as train_module
from pidkd.distill.data import load_dataset
from pidkd.distill.loop import fit
from pidkd.distill.methods import METHODS, build_method
from pidkd.distill.models import build_model, feature_positions
from pidkd.distill.settings import Recipe, Speed, resolve_device
from pidkd.distill.teachers import Teacher

PARTS = ("student forward", "method forward", "backward + step", "evaluation", "checkpoint", "teacher outputs")
METHOD_PARAMS = {"vid": {"weight": 100.0}, "rid": {"weight": 10.0}, "ted": {"weight": 10.0}}
"""The paper's weights (RID: 10 rounds, the first quarter of each the filter phase, by default)."""


class Clock:
    """Seconds spent in each wrapped callable; a call inside another timed one counts for the outer."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self.active: str | None = None

    def wrap(self, part: str, function: Callable) -> Callable:
        @functools.wraps(function)
        def timed(*args, **kwargs):
            if self.active is not None:
                return function(*args, **kwargs)
            self.active, began = part, time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - began
                self.active = None
        return timed


def data(samples_per_class: int, validation_per_class: int):
    train = load_dataset("mnist1d", split="train", samples_per_class=samples_per_class,
                         validation_per_class=validation_per_class)
    validation = load_dataset("mnist1d", split="validation", validation_per_class=validation_per_class)
    return train, validation, load_dataset("mnist1d", split="test")


def quick_teacher(model: str, train) -> Teacher:
    """A teacher of the embedded shape after a few epochs of Adam."""
    torch.manual_seed(0)
    network = build_model(model, 10, 1, block="post")
    baseline = build_method("baseline", student_channels=network.feature_channels,
                            teacher_channels=network.feature_channels, num_classes=10)
    fit(network, baseline, train, train, recipe=Recipe(optimizer="adam", lr=0.001, weight_decay=0.0),
        epochs=5, seed=0, device="cpu", progress=False, evaluate_every=5)
    return Teacher(network, "trained")


def one_run(method_name: str, args, splits, teacher: Teacher, *, old: bool, clock: Clock | None = None):
    """Wall seconds of one run and its final student weights."""
    train, validation, test = splits
    torch.manual_seed(0)
    student = build_model(args.student, 10, 1, block="post")
    method = build_method(method_name, student_channels=student.feature_channels,
                          teacher_channels=teacher.feature_channels, num_classes=10,
                          feature_positions=feature_positions(student, test[0][0]),
                          **METHOD_PARAMS.get(method_name, {}))
    milestones = (args.epochs // 2, round(args.epochs * 2 / 3))
    recipe = Recipe(lr=0.05, milestones=milestones, clip_grad_norm=None if method_name == "baseline" else 100.0,
                    filter_lr=0.2 if method_name in ("rid", "ted") else None)
    if clock is not None:
        student.forward = clock.wrap("student forward", student.forward)
        method.loss = clock.wrap("method forward", method.loss)
    speed = Speed(workers=0, checkpoint_seconds=0 if old else 60)
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        fit(student, method, train, test, recipe=recipe, epochs=args.epochs, seed=0, teacher=teacher,
            device="cpu", checkpoint=Path(folder) / "checkpoint.pt", progress=False, speed=speed,
            validation_set=validation, evaluate_every=1 if old else args.evaluate_every)
        seconds = time.perf_counter() - began
    return seconds, student.state_dict()


def breakdown(method_name: str, args, splits, teacher: Teacher) -> tuple[float, dict[str, float]]:
    """A run's wall seconds and the seconds of each of PARTS (plus "rest")."""
    clock = Clock()
    originals = {name: getattr(train_module, name) for name in ("evaluate", "save_atomic", "_step", "_with_teacher_outputs")}
    parts = dict(zip(originals, ("evaluation", "checkpoint", "backward + step", "teacher outputs")))
    try:
        for name, function in originals.items():
            setattr(train_module, name, clock.wrap(parts[name], function))
        seconds, _ = one_run(method_name, args, splits, teacher, old=args.old, clock=clock)
    finally:
        for name, function in originals.items():
            setattr(train_module, name, function)
    shares = {part: clock.seconds[part] for part in PARTS}
    shares["rest"] = seconds - sum(shares.values())
    return seconds, shares


def matmul_rate(size: int = 512, repeats: int = 40) -> float:
    """Floating-point operations a second of one thread's float32 matrix products (the best of
    three timings): what the core can do."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    timings = []
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(repeats):
            a @ b
        timings.append(time.perf_counter() - began)
    return 2 * size ** 3 * repeats / min(timings)


def teacher_run(args) -> float:
    """Wall seconds of two epochs of the embedded teacher's training (Adam 0.001, 680 signals a class)."""
    train = load_dataset("mnist1d", split="train", samples_per_class=680, validation_per_class=args.validation_per_class)
    torch.manual_seed(0)
    network = build_model(args.teacher, 10, 1, block="post")
    baseline = build_method("baseline", student_channels=network.feature_channels,
                            teacher_channels=network.feature_channels, num_classes=10)
    began = time.perf_counter()
    fit(network, baseline, train, train, recipe=Recipe(optimizer="adam", lr=0.001, weight_decay=0.0),
        epochs=2, seed=0, device="cpu", progress=False, evaluate_every=2)
    return time.perf_counter() - began


def study_share(runs_csv: Path, shares: dict[str, float], teacher_model: str) -> tuple[float, dict[str, float]]:
    """The study's share of the cores: each kind of run's share weighted by the training seconds the
    study's runs of that kind took (teachers are the runs of ``teacher_model``)."""
    import pandas as pd

    runs = pd.read_csv(runs_csv)
    kind = runs["method"].where(runs["model"] != teacher_model, "teacher")
    seconds = runs.groupby(kind)["seconds"].sum()
    seconds = seconds[seconds.index.isin(list(shares))]
    return float((seconds * pd.Series(shares)).sum() / seconds.sum()), seconds.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["baseline", "kd", "vid", "rid", "ted"], choices=sorted(METHODS))
    parser.add_argument("--teacher", default="wrn1d-16-2")
    parser.add_argument("--student", default="wrn1d-10-1")
    parser.add_argument("--samples-per-class", type=int, default=100)
    parser.add_argument("--validation-per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--evaluate-every", type=int, default=4)
    parser.add_argument("--old", action="store_true", help="break down the old way's run instead of the new")
    parser.add_argument("--compare", action="store_true", help="old against new, alternately, bitwise checked")
    parser.add_argument("--repeats", type=int, default=3, help="alternations per method for --compare")
    parser.add_argument("--flops", action="store_true", help="each run's rate against the core's matrix products")
    parser.add_argument("--study", type=Path, help="with --flops: a study's runs.csv, whose share of the cores to report")
    args = parser.parse_args()
    resolve_device("cpu", threads=1)
    splits = data(args.samples_per_class, args.validation_per_class)
    teacher = quick_teacher(args.teacher, splits[0])
    print(f"{args.teacher} -> {args.student}, {len(splits[0])} training, {len(splits[1])} validation and "
          f"{len(splits[2])} test examples, {args.epochs} epochs, 1 thread, "
          f"{'old' if args.old else f'new (evaluate_every={args.evaluate_every})'} way")
    print(f"{'method':>9} {'seconds':>8} " + " ".join(f"{p:>16}" for p in (*PARTS, "rest")))
    for method in args.methods:
        seconds, shares = breakdown(method, args, splits, teacher)
        print(f"{method:>9} {seconds:8.1f} " + " ".join(f"{s:7.1f} s {100 * s / seconds:4.0f} %" for s in shares.values()))
    if args.flops:
        peak = matmul_rate()
        print(f"\none thread's float32 matrix products (512 x 512): {peak / 1e9:.1f} GFLOP/s")
        print(f"{'method':>9} {'GFLOP':>7} {'seconds':>8} {'GFLOP/s':>8} {'share':>6}")
        shares = {}
        runs = {method: functools.partial(one_run, method, args, splits, teacher, old=args.old) for method in args.methods}
        if args.study:
            runs["teacher"] = functools.partial(teacher_run, args)
        for name, run in runs.items():
            seconds = run() if name == "teacher" else run()[0]
            with FlopCounterMode(display=False) as counter:
                run()
            flops = counter.get_total_flops()
            shares[name] = flops / seconds / peak
            print(f"{name:>9} {flops / 1e9:7.1f} {seconds:8.1f} {flops / seconds / 1e9:8.2f} {shares[name]:6.1%}")
        print(f"(again: {matmul_rate() / 1e9:.1f} GFLOP/s)")
        if args.study:
            share, seconds = study_share(args.study, shares, args.teacher)
            print(f"\nthe study's training ({args.study}: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
                  + f") reaches {share:.1%} of its cores' float32 matrix-product rate")
    if args.compare:
        print(f"\n{'method':>9} {'old s':>7} {'new s':>7} {'new/old':>8}  bitwise equal")
        for method in args.methods:
            times: dict[bool, list[float]] = {True: [], False: []}
            weights = {}
            for _ in range(args.repeats):
                for old in (True, False):
                    seconds, weights[old] = one_run(method, args, splits, teacher, old=old)
                    times[old].append(seconds)
            old_s, new_s = statistics.median(times[True]), statistics.median(times[False])
            equal = all(torch.equal(weights[True][k], weights[False][k]) for k in weights[True])
            print(f"{method:>9} {old_s:7.1f} {new_s:7.1f} {new_s / old_s:8.2f}  {'yes' if equal else 'NO'}")


if __name__ == "__main__":
    main()
