"""How the embedded profile's setting was chosen: the record of the selection stage.

The stage is a profile like any other, ``embedded_selection.yaml``: every candidate it tried is a
named variation (a setting's overrides and a method variant's, on the seeds it ran), so its runs
are trained, cached and keyed like every run of pidkd:

    python -m pidkd sweep --profile docs/selection/embedded_selection.yaml --choices --launch processes --jobs 2
    python docs/selection/embedded_selection.py            # summary and doubling check of the committed record
    python docs/selection/embedded_selection.py --write    # the record rebuilt from the finished runs

Settings are chosen on the validation split and only on the outcomes of the baseline and of the
*trained* teacher's students (the profile has no other teacher; the test split is never read).
A setting is acceptable when

1. every run is trained to a plateau: the mean validation accuracy over the last tenth of the
   epochs exceeds that over the tenth before by less than ``PLATEAU_POINTS`` (mean over seeds);
   and, stricter, twice the epochs on the same schedule add less than a point (seeds 0 and 1);
2. a trained teacher helps: some distillation method's mean final validation accuracy beats the
   baseline's by more than the larger of the two seed standard deviations (3 seeds or more).

The record, ``embedded_selection.csv``, has a row per run (setting, method variant, seed, final
validation accuracy, plateau statistic, final training loss, seconds), each setting led by its
teacher's, in the order the candidates were tried; ``embedded_selection_curves.csv`` the
validation curves. Its committed rows were made by this stage's earlier driver; the same runs
trained through the profile give the same accuracies, losses and curves on this machine type, and
seconds of their own (README.md has the comparison).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from pidkd.errors import ConfigError
from pidkd.study import experiment, grids
from pidkd.study.identity import Config
from pidkd.study.profiles import Profile
from pidkd.study.protocol import PLATEAU_POINTS, plateau_gain

HERE = Path(__file__).parent
PROFILE = HERE / "embedded_selection.yaml"
TABLE = HERE / "embedded_selection.csv"
CURVES = HERE / "embedded_selection_curves.csv"
CHOSEN, DOUBLED = "n100-e80-lr.05-decay", "n100-e160-lr.05-decay"


def _runs(profile: Profile) -> list[tuple[str, str, int, Config]]:
    """(setting, method variant, seed, config) of every selection run, each setting's teacher first."""
    runs, led = [], set()
    for name, choice in profile.spec.choices.items():
        setting, variant = name.split(" ", 1)
        if setting not in led:
            varied = profile.varied(dict(choice.set))
            dataset = varied.datasets[0]
            runs.append((setting, "teacher", 0, varied.teacher_training(dataset, varied.teacher_seed(dataset, 0))))
            led.add(setting)
        runs += [(setting, variant, point.seed, config)
                 for point, config in profile.resolve(grids.variation(profile, choice, choice.set))]
    return runs


def record(profile: Profile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The record and the curves of ``profile``'s finished selection runs; a ConfigError names
    how many have not run."""
    runs = _runs(profile)
    missing = [config for *_, config in runs if not experiment.is_finished(config)]
    if missing:
        raise ConfigError(f"{len(missing)} of the {len(runs)} selection runs have not finished: run python -m pidkd "
                          f"sweep --profile {PROFILE} --choices --launch processes")
    rows, curves = [], []
    for setting, variant, seed, config in runs:
        metrics = experiment.run(config).metrics
        curve = metrics.set_index("epoch")["val_acc"].dropna()
        rows.append({"setting": setting, "method": variant, "seed": seed, "epochs": config.epochs,
                     "val_acc": round(100 * curve.iloc[-1], 2), "plateau_gain": round(plateau_gain(curve), 2),
                     "train_loss": round(metrics["train_loss"].iloc[-1], 4),
                     "seconds": round(metrics["seconds"].sum(), 1), "cpu_seconds": math.nan})
        curves.append(pd.DataFrame({"setting": setting, "method": variant, "seed": seed, "epoch": curve.index,
                                    "val_acc": (100 * curve).round(2).values}))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per setting and method: seeds, mean and sd of the final validation accuracy, its gain over
    the setting's baseline, the mean plateau gain, and mean seconds."""
    stats = table.groupby(["setting", "method"], sort=False).agg(
        seeds=("seed", "count"), val_acc=("val_acc", "mean"), sd=("val_acc", "std"),
        plateau_gain=("plateau_gain", "mean"), seconds=("seconds", "mean"),
        cpu_seconds=("cpu_seconds", "mean")).reset_index()
    baseline = stats[stats["method"] == "baseline"].set_index("setting")
    stats["vs_baseline"] = stats["val_acc"] - stats["setting"].map(baseline["val_acc"])
    spread = stats["setting"].map(baseline["sd"])
    stats["helps"] = (stats["method"] != "baseline") & (stats["method"] != "teacher") & (
        stats["vs_baseline"] > stats["sd"].combine(spread, max)) & (stats["seeds"] >= 3)
    stats["plateau"] = stats["plateau_gain"] < PLATEAU_POINTS
    return stats.round(2)


def doubling(table: pd.DataFrame) -> pd.DataFrame:
    """Condition 1's stricter check: per method variant, mean final validation accuracy after twice
    the epochs on the same schedule minus after the chosen number, on the seeds run at both."""
    short, long = (table[table["setting"] == name].set_index(["method", "seed"])["val_acc"] for name in (CHOSEN, DOUBLED))
    both = long.index.intersection(short.index)
    both = both[both.get_level_values("method") != "teacher"]
    gain = (long[both] - short[both]).groupby(level="method")
    return pd.DataFrame({"seeds": gain.count(), "gain_from_doubling": gain.mean().round(2)}).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rebuild the record from the finished runs first")
    args = parser.parse_args()
    if args.write:
        table, curves = record(Profile.load(PROFILE))
        table.to_csv(TABLE, index=False)
        curves.to_csv(CURVES, index=False)
    table = pd.read_csv(TABLE)
    stats = summary(table)
    print(stats.to_markdown(index=False))
    print(f"\nThe chosen setting, {CHOSEN}\n")
    print(stats[stats["setting"] == CHOSEN].set_index("method").drop(columns="setting").to_markdown())
    print(f"\nCondition 1, stricter: validation points gained by doubling the epochs ({DOUBLED} against {CHOSEN})\n")
    print(doubling(table).to_markdown(index=False))


if __name__ == "__main__":
    main()
