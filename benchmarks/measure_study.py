"""The full study of ``pid.measure`` on the ground-truth cases of pidkd.pid.cases: its error against
the exact PID over sample counts, cluster counts, PCA sizes, noise levels and both feature maps, with
and without the shuffled-label control subtracted. Notebook 2 runs a smaller grid of the same study;
this one writes the whole frame (``study.csv``) and its tables and figure under ``--out``.

    python benchmarks/measure_study.py [--out results/measure_study] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

from pidkd.study import report, trust

matplotlib.use("Agg")

GRID = dict(n_samples=(250, 1000, 5000, 20000), n_clusters=(3, 5, 10, 20), n_components=(2, 5, 10, 20),
            noises=(0.25, 0.5, 1.0), mappings=("linear", "mlp"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/measure_study"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    study = trust.study(repeats=args.repeats, **GRID)
    args.out.mkdir(parents=True, exist_ok=True)
    study.to_csv(args.out / "study.csv", index=False)
    clean = study[(study["noise"] == 0.25) & (study["mapping"] == "linear")]
    tables = {
        # sample count x cluster count, with enough components for every case's states
        "measure_error_clusters": report.measure_error_table(clean[clean["n_components"] == 10]),
        # PCA size, at a sample count and cluster count the first table recommends
        "measure_error_components": report.measure_error_table(
            clean[(clean["n"] == 5000) & (clean["n_clusters"] == 10)], rows=("case",), columns="n_components"),
        # noise, both maps
        "measure_error_noise": report.measure_error_table(
            study[(study["n"] == 5000) & (study["n_clusters"] == 10) & (study["n_components"] == 10)],
            rows=("case", "mapping"), columns="noise"),
        # the shuffled-label control subtracted or not
        "measure_error_control": report.measure_error_table(
            clean[clean["n_components"] == 10], rows=("n", "n_clusters"), columns="estimator", estimator=None),
    }
    for name, table in tables.items():
        report.save_table(table, name, args.out)
        print(f"\n{name}\n\n{table.to_markdown()}")
    figure = report.measure_error_curves(clean[clean["n_components"] == 10])
    report.save_figure(figure, "measure_error", args.out)
    print(f"\n{len(study)} rows in {time.perf_counter() - start:.0f} s; written under {args.out}")


if __name__ == "__main__":
    main()
