"""Speed and accuracy of pidkd.pid.broja_pid against a cvxpy + Clarabel exponential-cone program,
both timed in this process on the same random distributions (Dirichlet(0.5)), and the time of
``measure`` on 2000 examples. Differences are the largest over red, uni_t, uni_s, syn, in bits.

    python benchmarks/pid_speed.py [--repeats 3] [--seed 0] [--large-oracle-runs 1]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import cvxpy as cp
import numpy as np

from pidkd.pid import broja_pid, measure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracle import oracle_pid  # noqa: E402  (the test oracle, shared)

SIZES = [(8, 8, 5), (20, 20, 10), (50, 50, 20)]
PARTS = ("red", "uni_t", "uni_s", "syn")


def timed(f, *args, **kwargs):
    """f's result and its wall-clock seconds."""
    start = time.perf_counter()
    result = f(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="random distributions per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--large-oracle-runs", type=int, default=1, help="cvxpy runs at 50x50x20 (~50 s each)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"cvxpy {cp.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    broja_pid(rng.dirichlet(np.ones(8)).reshape(2, 2, 2))  # warm-up: imports and first calls
    print(f"\n{'size':>10} {'runs':>5} {'broja_pid s':>12} {'cvxpy runs':>10} {'cvxpy s':>9} {'ratio':>7} "
          f"{'max |diff| bits':>16}")
    for size in SIZES:
        oracle_runs = args.large_oracle_runs if size == SIZES[-1] else args.repeats
        ours, theirs, diff = [], [], 0.0
        for i in range(args.repeats):
            p = rng.dirichlet(np.full(math.prod(size), 0.5)).reshape(size)
            pid, seconds = timed(broja_pid, p)
            ours.append(seconds)
            if i < oracle_runs:
                reference, seconds = timed(oracle_pid, p)
                theirs.append(seconds)
                diff = max(diff, max(abs(getattr(pid, part) - reference[part]) for part in PARTS))
        label = "x".join(map(str, size))
        if theirs:
            ratio = np.mean(theirs) / np.mean(ours[: len(theirs)])
            versus = f"{len(theirs):>10} {np.mean(theirs):>9.3f} {ratio:>6.1f}x {diff:>16.2e}"
        else:
            versus = f"{0:>10} {'-':>9} {'-':>7} {'-':>16}"
        print(f"{label:>10} {args.repeats:>5} {np.mean(ours):>12.4f} {versus}")

    print(f"\n{'measure':>22} {'n':>6} {'seconds':>8} {'red':>7} {'uni_t':>7} {'mi':>7}")
    n = 2000
    y = rng.integers(0, 10, size=n)
    t = rng.normal(size=(10, 32, 8, 8))[y] + rng.normal(size=(n, 32, 8, 8))  # teacher: a class signal
    s = rng.normal(size=(10, 16, 8, 8))[y] * 0.3 + rng.normal(size=(n, 16, 8, 8))  # student: a weaker one
    measure(t[:50], s[:50], y[:50])  # warm-up
    for n_clusters in (5, 10):
        for control in (False, True):
            m, seconds = timed(measure, t, s, y, n_clusters=n_clusters, control=control)
            label = f"{n_clusters} clusters" + (", control" if control else "")
            print(f"{label:>22} {m.n:>6} {seconds:>8.3f} {m.red:>7.3f} {m.uni_t:>7.3f} {m.mi:>7.3f}")


if __name__ == "__main__":
    main()
