"""``python -m pidkd``: train one configuration or a dataset's teacher, show a run's resolved
configuration, list a profile's runs, list or launch its grid (sweep), or download a dataset.

Each run is idempotent and keyed by its config hash, so a scheduler can fan a grid out."""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
from typing import Any

import torch
import yaml

from ..distill import data
from ..distill.schema import validate
from ..distill.settings import PRECISIONS, Speed, resolve_device
from ..errors import ConfigError, InputError, PidkdError, RunInterrupted
from . import experiment, gpucheck, grids, results
from .folders import claim_results, data_root, results_root
from .identity import Config
from .profiles import Profile
from .sources import profile_name


def _override(text: str) -> tuple[str, Any]:
    """``section.key=value`` with the value read as YAML (so lists and numbers keep their types)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected section.key=value, got {text!r}")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"the value of {key} is not valid YAML: {getattr(error, 'problem', error)}")


def _at_least(low: int) -> Any:
    """An argparse type: a whole number of at least ``low``."""
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, got {text!r}")
        return value
    return whole


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pidkd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    one = commands.add_parser("run", help="train one configuration (or return its cached result)")
    _run_arguments(one)
    _point_arguments(one)

    teacher = commands.add_parser("teacher", help="train a dataset's teacher (or return it cached), before its students")
    _run_arguments(teacher)
    teacher.add_argument("--seed", type=_at_least(0), default=0, help="the teacher's seed")

    show = commands.add_parser("show", help="print a run's fully resolved configuration (its config.json) and key")
    _profile_arguments(show)
    _point_arguments(show)
    show.add_argument("--device", default="auto", help="the device the run would train on (its precision follows)")
    show.add_argument("--precision", default="auto", choices=PRECISIONS)

    listing = commands.add_parser("list", help="list the finished runs of a profile")
    listing.add_argument("--profile", default="embedded")
    listing.add_argument("--results", default=None)

    sweep = commands.add_parser("sweep", help="list a profile's grid as commands, or launch it")
    sweep.add_argument("--profile", default="embedded")
    sweep.add_argument("--set", type=_override, action="append", default=[], metavar="KEY=VALUE")
    grids = sweep.add_mutually_exclusive_group()
    grids.add_argument("--noise", action="store_true", help="the noise sweep instead of the main grid")
    grids.add_argument("--weights", action="store_true", help="the weight sweep instead of the main grid")
    grids.add_argument("--choices", action="store_true", help="the map of choices (each variation) instead")
    grids.add_argument("--doubling", action="store_true", help="the grid at twice the epochs instead")
    sweep.add_argument("--launch", choices=LAUNCHERS, help="run the pending runs; without it, only list")
    sweep.add_argument("--jobs", type=_at_least(1), default=2, help="local processes (--launch processes)")
    sweep.add_argument("--slurm-partition", default=None)
    sweep.add_argument("--gpus", type=int, default=1, help="GPUs per Slurm job")
    sweep.add_argument("--timeout-min", type=int, default=24 * 60)
    sweep.add_argument("--device", default="auto")
    sweep.add_argument("--results", default=None)
    _speed_arguments(sweep)

    gpu = commands.add_parser("check-gpu", help="on CUDA: a short epoch of each method, its loss against fp32's, "
                                                "images/s, and the projected quick and paper grids; elsewhere nothing")
    gpu.add_argument("--n", type=int, default=10_000, help="CIFAR-shaped training images an epoch")
    gpu.add_argument("--device", default="cuda")
    _speed_arguments(gpu)

    fetch = commands.add_parser("download", help="download a dataset into data/")
    fetch.add_argument("dataset")
    fetch.add_argument("--root", default=None, help="default $PIDKD_DATA or the repository's data/")
    return parser


LAUNCHERS = ("processes", "submitit-local", "slurm")


def _profile_arguments(parser: argparse.ArgumentParser) -> None:
    """The profile, its overrides and a dataset."""
    parser.add_argument("--profile", default="embedded", help="a shipped profile name or a YAML file")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--set", type=_override, action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile entry, e.g. student_training.epochs=5 (repeatable)")


def _point_arguments(parser: argparse.ArgumentParser) -> None:
    """Which run of the profile's grid: teacher kind, method, seed."""
    parser.add_argument("--teacher", default="trained", help="teacher kind: trained, untrained or noisy")
    parser.add_argument("--method", default="baseline")
    parser.add_argument("--seed", type=_at_least(0), default=0)


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    """What every training command takes: the profile and its overrides, a dataset, where and how."""
    _profile_arguments(parser)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--results", default=None, help="results folder (default $PIDKD_RESULTS or results)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _speed_arguments(parser)


def _speed_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of :class:`pidkd.distill.settings.Speed`: how runs are computed, never part of their keys."""
    parser.add_argument("--compile", action="store_true", help="torch.compile the student and the teacher")
    parser.add_argument("--workers", type=int, default=Speed().workers, help="loader processes for file-backed datasets (CUB)")
    parser.add_argument("--no-channels-last", action="store_true", help="keep the default memory layout on CUDA")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto: bf16 on CUDA where supported, else fp16 with a scaler; fp32 off CUDA; "
                             "fp64: float64 throughout (slow; exact checks)")


def _speed(args: argparse.Namespace) -> Speed:
    options = dict(precision=args.precision, channels_last=False if args.no_channels_last else None,
                   compile=args.compile, workers=args.workers)
    return validate(Speed, options, "speed options")


def _command(config: Config, profile: str, overrides: list[tuple[str, Any]], teacher: bool = False) -> str:
    """The ``python -m pidkd run`` line that trains ``config`` (``teacher``: the ``teacher`` line)
    with ``overrides``: the sweep's own and those its grid varies the run by (a weight, a noise level)."""
    sets = "".join(f" --set {shlex.quote(f'{key}={json.dumps(value)}')}" for key, value in overrides)  # JSON is YAML
    if teacher:
        return f"python -m pidkd teacher --profile {profile} --dataset {config.dataset} --seed {config.seed}{sets}"
    kind = config.teacher_kind if config.teacher else "trained"
    return (f"python -m pidkd run --profile {profile} --dataset {config.dataset} --teacher {kind} "
            f"--method {config.method} --seed {config.seed}{sets}")


def _points(profile: Profile, args: argparse.Namespace) -> list[grids.Point]:
    """The runs a ``sweep`` names: the map of choices, the doubling check, a sweep, or the main grid."""
    spec = profile.spec
    if args.choices or args.doubling:
        if not (spec.choices if args.choices else spec.doubling):
            raise ConfigError(f"profile {profile.name!r} has no {'choices' if args.choices else 'doubling'} section")
        if args.doubling:
            return grids.variation(profile, spec.doubling, grids.doubled(profile))
        return [point for choice in spec.choices.values() for point in grids.variation(profile, choice, choice.set)]
    return grids.noise_sweep(profile) if args.noise else grids.weight_sweep(profile) if args.weights else grids.main(profile)


def _executor(args: argparse.Namespace) -> Any:
    """A submitit executor (Slurm, or its local executor), or None for local processes."""
    if args.launch == "processes":
        return None
    try:
        import submitit
    except ImportError as error:
        raise PidkdError("submitit is not installed; pip install 'pidkd[slurm]'") from error
    if args.launch == "slurm" and shutil.which("sbatch") is None:
        raise PidkdError("no Slurm here (sbatch is not on PATH): use --launch processes, or run the listed "
                         "commands (sweep without --launch) with a scheduler of your own")
    folder = results_root(args.results) / "submitit"
    if args.launch == "submitit-local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=args.timeout_min)
    else:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(timeout_min=args.timeout_min, gpus_per_node=args.gpus, slurm_partition=args.slurm_partition)
    return executor


def _sweep(args: argparse.Namespace) -> None:
    """List the grid (status, key, command; the trained teachers first), or launch its pending runs."""
    profile = Profile.load(args.profile, dict(args.set))
    resolve_device(args.device)
    claim_results(results_root(args.results) / profile.name, profile.source, write=args.launch is not None)
    by_key: dict[str, tuple[Config, list[tuple[str, Any]]]] = {}  # each run once, with the overrides that make it
    for point, config in profile.resolve(_points(profile, args)):
        config = experiment.in_precision(config, args.device, _speed(args))
        by_key.setdefault(config.key, (config, [*args.set, *point.settings]))
    listed = list(by_key.values())
    configs = [c for c, _ in listed]
    if args.launch is None:
        teachers = {}  # each trained teacher with the overrides of the first run that needs it
        for config, sets in listed:
            if config.teacher and config.teacher.training:
                teachers.setdefault(config.teacher.training, sets)
        for config, sets, is_teacher in [*((t, s, True) for t, s in teachers.items()), *((c, s, False) for c, s in listed)]:
            status = "done   " if experiment.is_finished(config, args.results) else "pending"
            print(f"{status} {config.key}  {_command(config, args.profile, sets, is_teacher)}")
        return
    for dataset in sorted({c.dataset for c in configs}):  # once here, not in every job at the same time
        data.download(dataset, data_root())
    done = experiment.run_grid(configs, jobs=args.jobs, root=args.results, device=args.device,
                               executor=_executor(args), speed=_speed(args))
    print(f"{len(done)} runs finished under {results_root(args.results) / profile.name / 'runs'}")


def _config(args: argparse.Namespace) -> Config:
    """The run a ``run``, ``teacher`` or ``show`` command names, in the precision it trains in on
    the device it names; its profile's results folder checked to be its own (and claimed by a run)."""
    profile = Profile.load(args.profile, dict(args.set))
    claim_results(results_root(getattr(args, "results", None)) / profile.name, profile.source,
                  write=args.command != "show")
    if args.command == "teacher":
        config = profile.teacher_training(args.dataset, args.seed)
    else:
        config = profile.config(args.dataset, args.teacher, args.method, args.seed)
    return experiment.in_precision(config, args.device, Speed(precision=args.precision))


def _list(args: argparse.Namespace) -> None:
    """The last epoch of every finished run (damaged run folders are reported on stderr)."""
    name = profile_name(args.profile)
    runs = results.collect_runs(name, root=args.results, write=False)  # a shared folder may be read-only
    if runs.empty:
        print(f"no finished runs of profile {name!r} under {results_root(args.results)}")
        return
    last = runs.groupby("key").tail(1).set_index("key")
    print(last[[*results.IDENTITY, "weight", "epoch", "test_acc"]].to_string())


def _check_gpu(args: argparse.Namespace) -> int:
    """``check-gpu``: exit 0 when every method passed, or when there is no CUDA device to check."""
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to check (on a CPU, run the embedded profile: make figures)")
        return 0
    lines, passed = gpucheck.report(resolve_device(args.device), _speed(args), n_train=args.n, n_test=max(1, args.n // 5))
    print("\n".join(lines))
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point. A user's error, or the environment's (an unwritable folder, no network), prints
    one line and exits with status 2, without a traceback; Ctrl-C says how to resume (status 130)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return _dispatch(args)
    except RunInterrupted as error:
        print(f"pidkd: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("pidkd: interrupted; rerun the same command to resume (finished runs and checkpoints are kept)",
              file=sys.stderr)
    except (PidkdError, InputError) as error:
        print(f"pidkd: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `sweep | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        where = error.filename or "a file"
        print(f"pidkd: error: cannot use {where}: {error.strerror or error}; check that the folder exists and is "
              f"writable, or choose another with --results / $PIDKD_RESULTS (data: --root / $PIDKD_DATA)",
              file=sys.stderr)
        return 2
    return 130


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command ``args`` names."""
    if args.command in ("run", "teacher"):
        speed = _speed(args)
        done = experiment.run(_config(args), root=args.results, device=args.device, progress=not args.quiet,
                              speed=speed)
        state = f"  diverged: {done.describe()}" if done.diverged else ""
        print(f"{done.directory}  test_acc={done.final_accuracy:.4f}{state}")
    elif args.command == "show":
        config = _config(args)
        print(json.dumps({"key": config.key, "config": config.as_dict()}, indent=2))
    elif args.command == "list":
        _list(args)
    elif args.command == "sweep":
        _sweep(args)
    elif args.command == "check-gpu":
        return _check_gpu(args)
    else:
        folder = data.download(args.dataset, data_root(args.root))
        print(f"{args.dataset} ships inside its package: nothing to download" if folder is None else folder)
    return 0

