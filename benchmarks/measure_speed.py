"""Seconds of ``pidkd.pid.measure`` on features the size of a network layer's (default 10,000
examples of 1,000 dimensions, 10 clusters and 10 PCA components, the ground-truth case ``ten_classes``
of pidkd.pid.cases), alone and with bootstrap intervals, against the time each should fit in (5 s and
30 s on two busy cores). ``--against REV`` also times ``measure`` of the pid layer at git revision REV
(pidkd/pid/, or pidkd/pid.py before it was a package) in this process, so a speed change is measured
on the same machine at the same moment.

    python benchmarks/measure_speed.py [--n 10000] [--dim 1000] [--clusters 10] [--resamples 200] [--against REV]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from pidkd import pid
from pidkd.pid import cases

ROOT = Path(__file__).resolve().parents[1]
BUDGET = {"measure": 5.0, "bootstrap": 30.0}  # seconds, at the default size


def at_revision(revision: str) -> ModuleType:
    """The pid layer as it was at a git revision, imported under another name: the package pidkd/pid/
    (its modules import one another relatively), or the module pidkd/pid.py of revisions before it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    folder = Path(tempfile.mkdtemp())
    modules = [name for name in git("ls-tree", "--name-only", revision, "pidkd/pid/").split() if name.endswith(".py")]
    if modules:
        package = folder / "pid_at_revision"
        package.mkdir()
        for name in modules:
            (package / Path(name).name).write_text(git("show", f"{revision}:{name}"))
        path, search = package / "__init__.py", [str(package)]
    else:
        path, search = folder / "pid_at_revision.py", None
        path.write_text(git("show", f"{revision}:pidkd/pid.py"))
    spec = importlib.util.spec_from_file_location("pid_at_revision", path, submodule_search_locations=search)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def best_of(repeats: int, f, *args, **kwargs) -> float:
    """The least wall-clock seconds of ``repeats`` calls: the machine is shared, so noise only adds."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--components", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each; the best is shown")
    parser.add_argument("--against", metavar="REV", help="also time measure of the pid layer at this git revision")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; n {args.n}, dim {args.dim}, "
          f"{args.clusters} clusters, {args.components} components")
    t, s, y = cases.features(cases.CASES["ten_classes"], args.n, noise=0.5, dim=args.dim)
    t, s = t.astype(np.float32), s.astype(np.float32)  # as a network's features arrive
    settings = dict(n_clusters=args.clusters, n_components=args.components)
    timed = dict(warn=False, allow_few=True)  # speed, not trust: small --n runs too (the test's)
    pid.measure(t[:100], s[:100], y[:100], **timed)  # warm-up: imports and first calls
    older = at_revision(args.against) if args.against else None
    print(f"\n{'':>16} {'seconds':>8} {'budget s':>9} {'of budget':>9}"
          + (f" {args.against[:10]:>10} {'speed-up':>8}" if older else ""))
    for label, budget, options in [("measure", BUDGET["measure"], {}),
                                   (f"bootstrap={args.resamples}", BUDGET["bootstrap"], {"bootstrap": args.resamples})]:
        seconds = best_of(args.repeats, pid.measure, t, s, y, **settings, **options, **timed)
        line = f"{label:>16} {seconds:>8.3f} {budget:>9.0f} {seconds / budget:>9.0%}"
        if older and not options:  # revisions before bootstrap intervals time only the plain measure
            before = best_of(args.repeats, older.measure, t, s, y, **settings)
            line += f" {before:>10.3f} {before / seconds:>7.2f}x"
        print(line)


if __name__ == "__main__":
    main()
