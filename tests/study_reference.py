"""The committed reference of the embedded study's paired effects (pidkd/effects.py): the runs the
claims rest on (the baseline, VID and RID under the trained, untrained and noisy teachers, at the
profile's weights) on seeds 0-19, each seed with a teacher of its own, trained on this machine. Each
effect's mean, seed spread and count go to pidkd/profiles/embedded-effects.csv, and the runs' final
accuracies to tests/study_reference_runs.csv, with the date and commit they came from:

    python tests/study_reference.py            # train what the results lack, print the effects and
                                               # how often a study fails their check
    python tests/study_reference.py --write    # and write the reference

About 30 minutes on two cores beyond the study's own runs (seeds 0-4 are the study's). Rewrite it
only on purpose, after a change meant to move the study's numbers (docs/reproducibility.md).
"""
from __future__ import annotations

import argparse
import datetime
import subprocess
from pathlib import Path

from pidkd.study import effects, experiment, report
from pidkd.study.profiles import Profile
from pidkd.study.results import runs_frame
from pidkd.study.spec import Runs

SEEDS = list(range(20))
RUNS = Runs(teachers=("trained", "untrained", "noisy"), methods=("baseline", "vid", "rid"))
REFERENCE = Path(__file__).parents[1] / "pidkd" / "profiles" / "embedded-effects.csv"
RUNS_TABLE = Path(__file__).with_name("study_reference_runs.csv")
"""The reference runs' final test accuracies (%), from which tests/test_effects.py measures what the check catches."""
COMMAND = "python tests/study_reference.py --write"
CHANGES = {"a correct run": None, "the trained RID 2 points lower": {("trained", "rid"): -2.0},
           "the trained VID 1 point lower": {("trained", "vid"): -1.0}}
"""The changes whose chance of failing the check is printed (out of sample: docs/reproducibility.md)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {REFERENCE.name}")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    profile = Profile.load("embedded", {"seeds": SEEDS})
    done = experiment.run_grid(profile.runs(RUNS), jobs=args.jobs, device="cpu")
    final = report.final_percent(runs_frame(done))
    summary = effects.summary(effects.per_seed(final))
    print(summary.round(2).to_string())
    n = len(Profile.load("embedded").seeds)
    for name, shift in CHANGES.items():
        print(f"{name}: a study of {n} seeds fails {effects.failure_chance(final, n, shift):.1%} of the time")
    if args.write:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        header = (f"# the embedded study's effects on seeds {SEEDS[0]}-{SEEDS[-1]} (pidkd/effects.py), written by "
                  f"`{COMMAND}` on {datetime.date.today().isoformat()} at commit {commit}\n")
        REFERENCE.write_text(header + summary.to_csv())
        RUNS_TABLE.write_text(header + final[["teacher", "method", "seed", "test_acc"]].sort_values(
            ["teacher", "method", "seed"]).to_csv(index=False))
        print(f"wrote {REFERENCE} and {RUNS_TABLE}")


if __name__ == "__main__":
    main()
