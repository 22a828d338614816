"""How the embedded profile's setting was chosen: every selection run, rerunnable.

The embedded study is run like a preregistered experiment, and this script is its selection
stage. Settings (data size, networks, epochs, recipe, RID's filter rate) are chosen on a
validation split carved from MNIST-1D's training split, and only on the outcomes of the baseline
and of students of the *trained* teacher: this script has no code path for an untrained or a
noisy teacher, and it never evaluates on the test split (the validation split is what ``fit``
measures). A setting is acceptable when

1. every run is trained to a plateau: the mean validation accuracy over the last tenth of the
   epochs exceeds that over the tenth before by less than ``PLATEAU_POINTS`` (mean over seeds);
   and, stricter, twice the epochs on the same schedule add less than a point (seeds 0 and 1);
2. a trained teacher helps: some distillation method's mean final validation accuracy beats the
   baseline's by more than the larger of the two seed standard deviations (3 seeds or more).

Each run appends one row to ``docs/selection/embedded_selection.csv`` (setting, method, seed, final
validation accuracy, plateau statistic, final training loss, wall and CPU seconds) and its
validation curve to ``docs/selection/embedded_selection_curves.csv``; runs already in the table are not
run again, so the table is the record and rerunning the script from empty tables reproduces it
(on another machine, up to the last bits of its CPU kernels). Trained teachers are cached under
``results/selection/``. ``--table`` prints the summary of every setting, the chosen one, the
doubling check and the projected wall time of the final grid.

    PIDKD_THREADS=1 OMP_NUM_THREADS=1 python docs/selection/embedded_selection.py          # run the plan
    python docs/selection/embedded_selection.py --table                                      # summarise
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from pidkd.distill.data import load_dataset
from pidkd.distill.methods import build_method
from pidkd.distill.models import build_model
from pidkd.study.protocol import PLATEAU_POINTS, plateau_gain  # condition 1, and the statistic it is about
from pidkd.distill.teachers import Teacher
from pidkd.distill.files import load_checkpoint, save_atomic
from pidkd.distill.loop import fit
from pidkd.distill.settings import Recipe, resolve_device

HERE = Path(__file__).parent
TABLE = HERE / "embedded_selection.csv"
CURVES = HERE / "embedded_selection_curves.csv"
CACHE = Path("results") / "selection"


@dataclass(frozen=True)
class Arm:
    """A method as a selection run trains it: its parameters and, for RID and TED, the constant
    rate of the teacher-filter phase."""

    method: str
    params: tuple[tuple[str, object], ...] = ()
    filter_lr: float | None = None
    clip_grad_norm: float | None = None
    """None: the setting's clipping."""


def arm(method: str, filter_lr: float | None = None, clip_grad_norm: float | None = None, **params: object) -> Arm:
    return Arm(method, tuple(sorted(params.items())), filter_lr, clip_grad_norm)


ARMS = {
    "baseline": arm("baseline"),
    "kd": arm("kd", temperature=4.0),
    "vid": arm("vid", weight=100.0),
    "rid": arm("rid", filter_lr=0.05, weight=10.0, rounds=10, filter_fraction=0.25),
    "ted": arm("ted", filter_lr=0.05, weight=10.0),
}
"""The methods at the paper's weights (VID 100, RID 10) and the prototype's filter rate."""


@dataclass(frozen=True)
class Setting:
    """One candidate embedded setting: what the profile would say for MNIST-1D."""

    samples_per_class: int = 100
    validation_per_class: int = 100
    teacher_model: str = "wrn1d-16-2"
    teacher_epochs: int = 60
    teacher_recipe: Recipe = Recipe(optimizer="adam", lr=0.001, weight_decay=0.0, batch_size=128)
    student_model: str = "wrn1d-10-1"
    block: str = "post"
    epochs: int = 300
    recipe: Recipe = Recipe(lr=0.0025)
    clip_grad_norm: float = 100.0
    """Gradient-norm clipping of the distillation methods (the baseline is not clipped)."""
    arms: dict[str, Arm] = field(default_factory=lambda: dict(ARMS))
    evaluate_every: int = 5

    def method_recipe(self, label: str) -> Recipe:
        if label == "baseline":
            return self.recipe
        chosen = self.arms[label]
        return self.recipe.model_copy(update={"clip_grad_norm": chosen.clip_grad_norm or self.clip_grad_norm,
                                              "filter_lr": chosen.filter_lr})


def with_arms(setting: Setting, **arms: Arm) -> Setting:
    """``setting`` with more arms (variants of a method) beside its own."""
    return dataclasses.replace(setting, arms={**setting.arms, **arms})


RID = dict(weight=10.0, rounds=10, filter_fraction=0.25)
BASE = Setting()
# The candidates, in the order they were tried (see PLAN), each with what it was meant to test.
SETTINGS: dict[str, Setting] = {
    # 50 examples a class, half the authors' 300 epochs at twice their rate: 600 steps of 128
    "n50-e150-lr.005": dataclasses.replace(BASE, samples_per_class=50, teacher_epochs=120, epochs=150,
                                           recipe=Recipe(lr=0.005)),
    # 100 examples a class, a quarter of the epochs at four times the rate: 600 steps too
    "n100-e75-lr.01": dataclasses.replace(BASE, epochs=75, recipe=Recipe(lr=0.01)),
    # 80 epochs: 10 RID rounds of 8 epochs whose first 2 are the filter phase (rho = 1/4 exactly)
    "n100-e80-lr.01": dataclasses.replace(BASE, epochs=80, recipe=Recipe(lr=0.01), evaluate_every=4),
    # half the cost: 10 RID rounds of 4 epochs, the first the filter phase (rho = 1/4 exactly)
    "n100-e40-lr.02": dataclasses.replace(BASE, epochs=40, recipe=Recipe(lr=0.02), evaluate_every=2),
    # the same with the intended recipe's decay, x0.2 at 1/2 and 2/3 of the epochs (150 and 200 of 300)
    "n100-e40-lr.04-decay": with_arms(
        dataclasses.replace(BASE, epochs=40, recipe=Recipe(lr=0.04, milestones=(20, 27)), evaluate_every=2),
        # RID collapses mid-run at these rates: the prototype's variance term (mean v^2 rather than
        # log v keeps v from shrinking to its floor, where d^2 / v makes the student's pull stiff),
        # and a faster teacher filter
        **{"rid-square": arm("rid", filter_lr=0.05, variance_penalty="square", **RID),
           "rid-filter.2": arm("rid", filter_lr=0.2, **RID),
           "rid-square-filter.2": arm("rid", filter_lr=0.2, variance_penalty="square", **RID),
           # ... which only makes it worse: its collapse starts in a filter phase, whose step on the
           # filtered teacher's mismatch grows as 1 / v; slower filters, or tighter clipping
           "rid-filter.01": arm("rid", filter_lr=0.01, **RID),
           "rid-filter.005": arm("rid", filter_lr=0.005, **RID),
           "rid-filter-as-student": arm("rid", **RID),
           "rid-clip10": arm("rid", filter_lr=0.05, clip_grad_norm=10.0, **RID),
           # the student phase itself degrades first (epochs 12-16, gradients far below the clip):
           # as v shrinks the pull weight / v outgrows cross-entropy. Smaller weights (the sweep's)
           "rid@1": arm("rid", filter_lr=0.05, **{**RID, "weight": 1.0}),
           "rid@3": arm("rid", filter_lr=0.05, **{**RID, "weight": 3.0}),
           # the filter rate where RID is stable: the student's schedule, or faster
           "rid@1-filter-as-student": arm("rid", **{**RID, "weight": 1.0}),
           "rid@3-filter-as-student": arm("rid", **{**RID, "weight": 3.0}),
           "rid@1-filter.2": arm("rid", filter_lr=0.2, **{**RID, "weight": 1.0}),
           "rid@3-filter.2": arm("rid", filter_lr=0.2, **{**RID, "weight": 3.0})}),
    # ... and lower rates at the same weight
    "n100-e40-lr.02-decay": dataclasses.replace(BASE, epochs=40, recipe=Recipe(lr=0.02, milestones=(20, 27)),
                                                evaluate_every=2),
    "n100-e40-lr.01-decay": dataclasses.replace(BASE, epochs=40, recipe=Recipe(lr=0.01, milestones=(20, 27)),
                                                evaluate_every=2),
}
DECAY = SETTINGS["n100-e40-lr.04-decay"]
SETTINGS |= {
    # other teachers for the same students: trained with the students' recipe, and deeper (WRN-40-2)
    "n100-e40-lr.04-decay-tsgd": dataclasses.replace(DECAY, teacher_epochs=40, teacher_recipe=DECAY.recipe),
    "n100-e40-lr.04-decay-t40": dataclasses.replace(DECAY, teacher_model="wrn1d-40-2"),
    # twice the epochs on the same schedule (x0.2 at 1/2 and 2/3): is 40 a plateau?
    "n100-e80-lr.04-decay": with_arms(
        dataclasses.replace(DECAY, epochs=80, recipe=Recipe(lr=0.04, milestones=(40, 53))),
        **{"vid@30": arm("vid", weight=30.0), "vid@300": arm("vid", weight=300.0),
           "rid@30": arm("rid", filter_lr=0.05, **{**RID, "weight": 30.0})}),
    # RID gains 4-5 points from 40 to 80 epochs: and from 80 to 160?
    "n100-e160-lr.04-decay": dataclasses.replace(DECAY, epochs=160, recipe=Recipe(lr=0.04, milestones=(80, 107)),
                                                 evaluate_every=4),
}
E80 = SETTINGS["n100-e80-lr.04-decay"]
SETTINGS |= {
    # the baseline student (94.1) nearly matches the Adam-trained teacher (94.6): a teacher
    # trained with the students' recipe for as long
    "n100-e80-lr.04-decay-tsgd": dataclasses.replace(E80, teacher_epochs=80, teacher_recipe=E80.recipe),
    # the intended recipe's rate itself (0.05, x0.2 at 150 and 200 of 300 epochs), shrunk to 80 epochs
    "n100-e80-lr.05-decay": with_arms(
        dataclasses.replace(E80, recipe=Recipe(lr=0.05, milestones=(40, 53))),
        # RID's filter rate, at the paper's weight and below it (where RID is stable): the
        # prototype's 0.05, faster (0.2), or the student's own schedule
        **{f"rid@{w:g}-filter{name}": arm("rid", filter_lr=rate, **{**RID, "weight": w})
           for w in (1.0, 3.0, 10.0) for name, rate in ((".05", 0.05), (".2", 0.2), ("-as-student", None))},
        # chosen: 0.2 (best at weight 1, the only rate without collapses at 10); TED is RID's machinery
        **{"rid@30-filter.2": arm("rid", filter_lr=0.2, **{**RID, "weight": 30.0}),
           "ted-filter.2": arm("ted", filter_lr=0.2, weight=10.0)}),
}
CHOSEN = SETTINGS["n100-e80-lr.05-decay"]
SETTINGS |= {
    # the chosen setting with twice the epochs on the same schedule: have its runs finished?
    "n100-e160-lr.05-decay": dataclasses.replace(CHOSEN, epochs=160, recipe=Recipe(lr=0.05, milestones=(80, 107)),
                                                 evaluate_every=8),
}
FINAL_ARMS = ("baseline", "kd", "vid", "vid@30", "vid@300", "rid@10-filter.2", "rid@3-filter.2", "rid@30-filter.2",
              "rid@1-filter.2", "ted-filter.2")
"""The methods of the chosen setting at the paper's weights and their neighbours."""
PLAN: list[tuple[str, str, tuple[int, ...]]] = [
    ("n50-e150-lr.005", "baseline", (0, 1)),
    ("n100-e75-lr.01", "baseline", (0, 1)),
    ("n50-e150-lr.005", "kd", (0, 1)),
    ("n100-e75-lr.01", "kd", (0, 1)),
    *[("n100-e80-lr.01", method, (0,)) for method in ("baseline", "kd", "vid", "rid", "ted")],
    *[(setting, method, (0,)) for setting in ("n100-e40-lr.02", "n100-e40-lr.04-decay")
      for method in ("baseline", "kd", "vid", "rid", "ted")],
    *[("n100-e40-lr.04-decay", label, (0,)) for label in ("rid-square", "rid-filter.2", "rid-square-filter.2",
                                                           "rid-filter.01", "rid-filter.005", "rid-filter-as-student",
                                                           "rid-clip10", "rid@1", "rid@3")],
    *[(setting, method, (0,)) for setting in ("n100-e40-lr.02-decay", "n100-e40-lr.01-decay")
      for method in ("rid", "baseline")],
    *[(setting, method, (0,)) for setting in ("n100-e40-lr.04-decay-tsgd", "n100-e40-lr.04-decay-t40")
      for method in ("kd", "vid")],
    *[("n100-e40-lr.04-decay", label, (0,)) for label in ("rid@1-filter-as-student", "rid@3-filter-as-student",
                                                           "rid@1-filter.2", "rid@3-filter.2")],
    *[("n100-e80-lr.04-decay", label, (0,)) for label in ("baseline", "kd", "vid", "rid@1", "rid@3", "ted")],
    *[("n100-e160-lr.04-decay", label, (0,)) for label in ("baseline", "rid@1", "rid@3", "kd")],
    *[("n100-e80-lr.04-decay", label, (0,)) for label in ("rid", "vid@30", "vid@300", "rid@30",
                                                           "rid-filter-as-student", "rid@3-filter-as-student",
                                                           "rid@3-filter.2")],
    *[("n100-e80-lr.04-decay-tsgd", label, (0,)) for label in ("kd", "vid")],
    *[("n100-e80-lr.05-decay", label, (0,)) for label in ("baseline", "kd", "vid", "rid@3", "ted")],
    *[("n100-e80-lr.05-decay", f"rid@{w}-filter{name}", (0, 1, 2)) for w in (3, 10, 1)
      for name in (".05", ".2", "-as-student")],
    *[("n100-e80-lr.05-decay", label, (0, 1, 2, 3, 4)) for label in FINAL_ARMS],
    *[("n100-e160-lr.05-decay", label, (0, 1)) for label in ("baseline", "kd", "vid", "rid@10-filter.2",
                                                              "rid@3-filter.2", "ted-filter.2")],
]
"""(setting, method, seeds) in the order they were run; the table has one row per run."""


def _data(setting: Setting) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    """The training subset (fixed across seeds, as in the profiles) and the validation split."""
    train = load_dataset("mnist1d", split="train", samples_per_class=setting.samples_per_class,
                         validation_per_class=setting.validation_per_class)
    validation = load_dataset("mnist1d", split="validation", validation_per_class=setting.validation_per_class)
    return train, validation


OWN_CHOICES = {
    "vid": {"init": "pytorch", "variance_start": "v=5"},
    "rid": {"head": "pooled", "init": "pytorch", "variance_start": "v=5", "fixed_side_bn": "eval",
            "round_length": "balanced"},
}
"""The selection ran before the authors' choices were options: with pidkd's own (docs/method.md),
a PyTorch-initialised classifier included, which the embedded profile pins."""
OWN_CHOICES["ted"] = OWN_CHOICES["rid"]


def _network(model: str, setting: Setting, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(model, 10, 1, block=setting.block, classifier_init="pytorch")


def _teacher(setting: Setting) -> tuple[Teacher, list[dict], float, float]:
    """The trained teacher of ``setting`` (seed 0), its validation curve, its wall and CPU seconds."""
    fields = (setting.teacher_model, setting.block, setting.samples_per_class, setting.validation_per_class,
              setting.teacher_epochs, setting.teacher_recipe)
    path = CACHE / f"teacher-{hashlib.sha256(repr(fields).encode()).hexdigest()[:12]}.pt"
    network = _network(setting.teacher_model, setting, seed=0)
    if path.exists():
        state = load_checkpoint(path)
        network.load_state_dict(state["network"])
        return Teacher(network, "trained"), state["rows"], state["seconds"], state.get("cpu_seconds", float("nan"))
    train, validation = _data(setting)
    baseline = build_method("baseline", student_channels=network.feature_channels,
                            teacher_channels=network.feature_channels, num_classes=10)
    began, cpu = time.perf_counter(), time.process_time()
    rows = fit(network, baseline, train, validation, recipe=setting.teacher_recipe, epochs=setting.teacher_epochs,
               seed=0, device="cpu", progress=False, evaluate_every=setting.evaluate_every)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    CACHE.mkdir(parents=True, exist_ok=True)
    save_atomic({"network": network.state_dict(), "rows": rows, "seconds": seconds, "cpu_seconds": cpu}, path)
    return Teacher(network, "trained"), rows, seconds, cpu


def train_student(setting: Setting, label: str, seed: int) -> tuple[list[dict], float, float]:
    """One selection run: its metrics rows (``test_acc`` there is the *validation* accuracy), wall
    seconds and CPU seconds (what a busy machine distorts less), the teacher's outputs included."""
    method = setting.arms[label]
    teacher = _teacher(setting)[0] if method.method != "baseline" else None
    train, validation = _data(setting)
    student = _network(setting.student_model, setting, seed)
    distiller = build_method(method.method, student_channels=student.feature_channels,
                             teacher_channels=(teacher or student).feature_channels, num_classes=10,
                             **{**OWN_CHOICES.get(method.method, {}), **dict(method.params)})
    began, cpu = time.perf_counter(), time.process_time()
    rows = fit(student, distiller, train, validation, recipe=setting.method_recipe(label), epochs=setting.epochs,
               seed=seed, teacher=teacher, device="cpu", progress=False, evaluate_every=setting.evaluate_every)
    return rows, time.perf_counter() - began, time.process_time() - cpu


def _record(setting_name: str, method: str, seed: int, rows: list[dict], seconds: float, cpu: float, epochs: int) -> None:
    curve = pd.Series({r["epoch"]: r["test_acc"] for r in rows}).dropna()
    row = {"setting": setting_name, "method": method, "seed": seed, "epochs": epochs,
           "val_acc": round(100 * curve.iloc[-1], 2), "plateau_gain": round(plateau_gain(curve), 2),
           "train_loss": round(rows[-1]["train_loss"], 4), "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1)}
    _append(TABLE, pd.DataFrame([row]))
    _append(CURVES, pd.DataFrame({"setting": setting_name, "method": method, "seed": seed,
                                  "epoch": curve.index, "val_acc": (100 * curve).round(2).values}))


def _append(path: Path, frame: pd.DataFrame) -> None:
    if path.exists():
        frame = pd.concat([pd.read_csv(path), frame], ignore_index=True)
    frame.to_csv(path, index=False)


def run_plan(only: str | None) -> None:
    done = set()
    if TABLE.exists():
        done = {tuple(r) for r in pd.read_csv(TABLE)[["setting", "method", "seed"]].itertuples(index=False)}
    resolve_device("cpu")
    for name, method, seeds in PLAN:
        if only and name != only:
            continue
        setting = SETTINGS[name]
        if ("teacher" not in {m for s, m, _ in done if s == name}):
            _, rows, seconds, cpu = _teacher(setting)
            _record(name, "teacher", 0, rows, seconds, cpu, setting.teacher_epochs)
            done.add((name, "teacher", 0))
        for seed in seeds:
            if (name, method, seed) in done:
                continue
            rows, seconds, cpu = train_student(setting, method, seed)
            _record(name, method, seed, rows, seconds, cpu, setting.epochs)
            done.add((name, method, seed))
            print(f"{name} {method} seed {seed}: val {100 * rows[-1]['test_acc']:.2f} in {seconds:.0f} s", flush=True)


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
    """Condition 1's stricter check: per arm, mean final validation accuracy after twice the
    epochs on the same schedule minus after the chosen number, on the seeds run at both."""
    short, long = (table[table["setting"] == name].set_index(["method", "seed"])["val_acc"]
                   for name in ("n100-e80-lr.05-decay", "n100-e160-lr.05-decay"))
    both = long.index.intersection(short.index)
    both = both[both.get_level_values("method") != "teacher"]
    gain = (long[both] - short[both]).groupby(level="method")
    return pd.DataFrame({"seeds": gain.count(), "gain_from_doubling": gain.mean().round(2)}).reset_index()


def grid_runs(sweep_weights: int = 5, sweep_teachers: int = 2, sweep_seeds: int = 5, noise_levels: int = 3) -> dict[str, int]:
    """Runs of each method in a final grid of 5 seeds: baseline; KD, VID, RID, TED under 3 teachers;
    VID and RID also at the other sweep weights (under trained and untrained teachers) and at the
    other noise levels. The brief's grid is the default."""
    extra = (sweep_weights - 1) * sweep_teachers * sweep_seeds + (noise_levels - 1) * 5
    return {"baseline": 5, "kd": 15, "ted-filter.2": 15, "vid": 15 + extra, "rid@10-filter.2": 15 + extra}


GRIDS = {
    "the brief's (5 sweep weights x 2 teachers x 5 seeds, 3 noise levels)": grid_runs(),
    "3 sweep weights": grid_runs(sweep_weights=3),
    "5 sweep weights, trained teacher only": grid_runs(sweep_teachers=1),
    "5 sweep weights, 3 seeds": grid_runs(sweep_seeds=3),
}


def test_pass_seconds(setting: Setting, examples: int = 2000, repeats: int = 5) -> float:
    """CPU seconds of one inference pass of the student over the test split's size, on random
    inputs (the grid evaluates the test split too, which selection runs never do)."""
    student = _network(setting.student_model, setting, seed=0).eval()
    x = torch.randn(examples, 1, 40)
    began = time.process_time()
    with torch.inference_mode():
        for _ in range(repeats):
            for batch in x.split(512):
                student(batch)
    return (time.process_time() - began) / repeats


def projected_minutes(stats: pd.DataFrame, setting: Setting, runs: dict[str, int], pid_epochs: int = 5,
                      processes: int = 2) -> float:
    """Wall minutes of the final grid on ``processes`` one-thread processes: each run's CPU
    seconds here plus its test evaluations and PID saves, the teacher first and alone."""
    chosen = stats[stats["setting"] == "n100-e80-lr.05-decay"].set_index("method")
    extra = test_pass_seconds(setting) * (setting.epochs // setting.evaluate_every + pid_epochs)
    core_seconds = sum(n * (chosen.loc[label, "cpu_seconds"] + extra) for label, n in runs.items())
    teacher = chosen.loc["teacher"]  # trained before CPU seconds were recorded: its wall seconds then
    teacher_seconds = teacher["seconds"] if math.isnan(teacher["cpu_seconds"]) else teacher["cpu_seconds"]
    return (teacher_seconds + core_seconds / processes) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="run only this setting's part of the plan")
    parser.add_argument("--table", action="store_true", help="print the summary as Markdown and exit")
    args = parser.parse_args()
    if not args.table:
        run_plan(args.only)
    if not TABLE.exists():
        return
    table = pd.read_csv(TABLE)
    stats = summary(table)
    print(stats.to_markdown(index=False))
    print("\nThe chosen setting, n100-e80-lr.05-decay\n")
    chosen = stats[stats["setting"] == "n100-e80-lr.05-decay"].set_index("method")
    print(chosen.loc[["teacher", *FINAL_ARMS]].drop(columns="setting").to_markdown())
    print("\nCondition 1, stricter: validation points gained by doubling the epochs (160 against 80)\n")
    print(doubling(table).to_markdown(index=False))
    resolve_device("cpu")
    print("\nProjected wall time of the final grid on 2 one-thread processes, teacher included\n")
    for name, runs in GRIDS.items():
        print(f"- {name}: {sum(runs.values())} runs, {projected_minutes(stats, CHOSEN, runs):.1f} min")


if __name__ == "__main__":
    sys.exit(main())
