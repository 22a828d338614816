"""Should a bootstrap of ``pid.measure`` refit the clustering in every resample, and which interval
should it report? On ground-truth cases (pidkd.pid.cases), independent data sets from one population:
the real spread of each term across data sets beside the 95% intervals of three resampling policies
(codes fixed, as ``measure_codes`` does; k-means refitted on fixed PCA coordinates, as ``measure``
does; PCA and k-means refitted) and three kinds of interval (the resamples' percentile range; the
basic interval, that range reflected about the estimate and floored at 0; the basic interval
stretched to include the estimate, pidkd's), how often each covers the procedure's large-sample
value and the latent truth, and seconds per interval of 200 resamples.

    python benchmarks/bootstrap_coverage.py [--datasets 20] [--resamples 200] [--full-resamples 50]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from pidkd.pid import INTERVAL_TERMS, cases, discretize, measure, measure_codes

# (case, n, n_clusters, noise): matched states, overlapping states, fewer clusters than states,
# more clusters than states, a teacher without label information
SETTINGS = [
    ("noisy_channels", 1000, 5, 0.5),
    ("label_and_nuisance", 1000, 5, 1.0),
    ("ten_classes", 2000, 5, 0.25),
    ("xor", 500, 5, 0.5),
    ("nuisance_teacher", 1000, 10, 0.5),
]
TERMS = ("red", "uni_t", "uni_s", "syn", "mi")
POLICIES = ("fixed", "full")  # the kmeans policy is pidkd.pid.measure's own bootstrap, called as it is
PIDKD = "kmeans basic with estimate"
DIM = 64
N_COMPONENTS = 5  # PCA size of every measurement here (the default was 5 when these numbers were first taken)
LARGE_N = 100_000


def resampled(policy: str, t, s, y, n_clusters: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Every term (columns, INTERVAL_TERMS) over bootstrap resamples (rows) of the examples under ``policy``."""
    codes_t, codes_s = discretize(t, n_clusters, N_COMPONENTS), discretize(s, n_clusters, N_COMPONENTS)
    values = []
    for _ in range(resamples):
        i = rng.integers(0, len(y), size=len(y))
        if policy == "fixed":
            m = measure_codes(codes_t[i], codes_s[i], y[i])
        else:
            m = measure(t[i], s[i], y[i], n_clusters, N_COMPONENTS)
        values.append([getattr(m, term) for term in INTERVAL_TERMS])
    return np.array(values)


def intervals(estimate: float, values: np.ndarray) -> dict[str, tuple[float, float]]:
    """The three kinds of 95% interval from a term's estimate and its resampled values."""
    low, high = np.percentile(values, [2.5, 97.5])
    basic = max(2 * estimate - high, 0.0), max(2 * estimate - low, 0.0)
    return {"percentile": (low, high), "basic": basic,
            "basic with estimate": (min(basic[0], estimate), max(basic[1], estimate))}


def one_data_set(case_name: str, n: int, n_clusters: int, noise: float, seed: int, args) -> list[dict]:
    """Rows (policy and interval kind, term) for one data set of a setting."""
    case = cases.CASES[case_name]
    t, s, y = cases.features(case, n, noise, DIM, seed=seed)
    start = time.perf_counter()
    m = measure(t, s, y, n_clusters, N_COMPONENTS, bootstrap=args.resamples)
    found = {PIDKD: (m.intervals, (time.perf_counter() - start) * 200 / args.resamples)}
    for policy in POLICIES:
        resamples = args.full_resamples if policy == "full" else args.resamples
        start = time.perf_counter()
        values = resampled(policy, t, s, y, n_clusters, resamples, np.random.default_rng(seed))
        seconds = (time.perf_counter() - start) * 200 / resamples
        by_term = {term: intervals(getattr(m, term), values[:, j]) for j, term in enumerate(INTERVAL_TERMS)}
        for kind in by_term["red"]:
            found[f"{policy} {kind}"] = ({term: by_term[term][kind] for term in INTERVAL_TERMS}, seconds)
    return [{"term": term, "policy": policy, "estimate": getattr(m, term), "truth": getattr(case.truth, term),
             "low": bounds[term][0], "high": bounds[term][1], "seconds_per_200": seconds}
            for policy, (bounds, seconds) in found.items() for term in TERMS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=20, help="independent data sets per setting")
    parser.add_argument("--resamples", type=int, default=200, help="resamples for the fixed and kmeans policies")
    parser.add_argument("--full-resamples", type=int, default=50, help="resamples for the full refit (slow)")
    args = parser.parse_args()
    frames = []
    for case_name, n, n_clusters, noise in SETTINGS:
        big = measure(*cases.features(cases.CASES[case_name], LARGE_N, noise, DIM, seed=10_000),
                      n_clusters, N_COMPONENTS)
        for seed in range(args.datasets):
            rows = pd.DataFrame(one_data_set(case_name, n, n_clusters, noise, seed, args))
            frames.append(rows.assign(case=case_name, n=n, n_clusters=n_clusters, noise=noise, seed=seed,
                                      large_n=rows["term"].map(lambda term: getattr(big, term))))
    frame = pd.concat(frames, ignore_index=True).assign(width=lambda f: f["high"] - f["low"])
    for target in ("large_n", "truth", "estimate"):
        frame[f"covers_{target}"] = frame["low"].le(frame[target] + 1e-9) & frame["high"].ge(frame[target] - 1e-9)
    setting = ["case", "n", "n_clusters", "noise", "term"]
    spread = frame[frame["policy"] == PIDKD].groupby(setting, sort=False).agg(
        truth=("truth", "first"), large_n=("large_n", "first"), mean=("estimate", "mean"), sd=("estimate", "std"))
    spread["ideal_width"] = 2 * 1.96 * spread["sd"]
    percentile = frame[frame["policy"].str.endswith("percentile") | (frame["policy"] == PIDKD)]
    widths = percentile.groupby([*setting, "policy"], sort=False)["width"].mean().unstack("policy")
    coverage = frame.groupby([*setting, "policy"], sort=False)[["covers_large_n", "covers_truth"]].mean()
    print(f"{args.datasets} data sets per setting; {args.resamples} resamples (fixed, kmeans), {args.full_resamples} "
          f"(full); dim {DIM}; {N_COMPONENTS} PCA components; large_n: measure at n = {LARGE_N}; "
          f"ideal_width: 2 x 1.96 x sd across data sets; "
          f"'{PIDKD}' is pidkd.pid.measure(..., bootstrap={args.resamples})\n")
    print("mean widths of the percentile intervals (and of pidkd's) beside the ideal\n")
    print(spread.join(widths.add_prefix("width ")).round(3).to_markdown())
    print("\nhow often the intervals cover the large-sample value and the truth\n")
    print(coverage.unstack("policy").round(2).to_markdown())
    print("\nmean over settings and terms\n")
    overall = frame.groupby("policy", sort=False)[
        ["covers_large_n", "covers_truth", "covers_estimate", "seconds_per_200"]]
    print(overall.mean().round(3).to_markdown())


if __name__ == "__main__":
    main()
