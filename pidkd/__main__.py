"""``python -m pidkd``: run one configuration, list a profile's runs, or download a dataset.

Each run is idempotent and keyed by its config hash, so a scheduler can fan a grid out."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import yaml

from . import data, experiment
from .errors import PidkdError
from .train import PRECISIONS, Speed


def _override(text: str) -> tuple[str, Any]:
    """``section.key=value`` with the value read as YAML (so lists and numbers keep their types)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected section.key=value, got {text!r}")
    return key, yaml.safe_load(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pidkd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    one = commands.add_parser("run", help="train one configuration (or return its cached result)")
    one.add_argument("--profile", default="embedded", help="a shipped profile name or a YAML file")
    one.add_argument("--dataset", required=True)
    one.add_argument("--teacher", default="trained", help="teacher kind: trained, untrained or noisy")
    one.add_argument("--method", default="baseline")
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--set", type=_override, action="append", default=[], metavar="KEY=VALUE",
                     help="override a profile entry, e.g. student_training.epochs=5 (repeatable)")
    one.add_argument("--device", default="auto")
    one.add_argument("--results", default=None, help="results folder (default $PIDKD_RESULTS or results)")
    one.add_argument("--quiet", action="store_true", help="no progress bar")
    _speed_arguments(one)

    listing = commands.add_parser("list", help="list the finished runs of a profile")
    listing.add_argument("--profile", default="embedded")
    listing.add_argument("--results", default=None)

    sweep = commands.add_parser("sweep", help="list a profile's grid as commands, or launch it")
    sweep.add_argument("--profile", default="embedded")
    sweep.add_argument("--set", type=_override, action="append", default=[], metavar="KEY=VALUE")
    sweep.add_argument("--noise", action="store_true", help="the noise sweep instead of the main grid")
    sweep.add_argument("--launch", choices=LAUNCHERS, help="run the pending runs; without it, only list")
    sweep.add_argument("--jobs", type=int, default=2, help="local processes (--launch processes)")
    sweep.add_argument("--slurm-partition", default=None)
    sweep.add_argument("--gpus", type=int, default=1, help="GPUs per Slurm job")
    sweep.add_argument("--timeout-min", type=int, default=24 * 60)
    sweep.add_argument("--device", default="auto")
    sweep.add_argument("--results", default=None)
    _speed_arguments(sweep)

    fetch = commands.add_parser("download", help="download a dataset into data/")
    fetch.add_argument("dataset")
    fetch.add_argument("--root", default="data")
    return parser


LAUNCHERS = ("processes", "submitit-local", "slurm")


def _speed_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of :class:`pidkd.train.Speed`: how runs are computed, never part of their keys."""
    parser.add_argument("--compile", action="store_true", help="torch.compile the student and the teacher")
    parser.add_argument("--workers", type=int, default=Speed.workers, help="loader processes for file-backed datasets (CUB)")
    parser.add_argument("--no-channels-last", action="store_true", help="keep the default memory layout on CUDA")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto: bf16 on CUDA where supported, else fp16 with a scaler; fp32 off CUDA")


def _speed(args: argparse.Namespace) -> Speed:
    return Speed(precision=args.precision, channels_last=False if args.no_channels_last else None,
                 compile=args.compile, workers=args.workers)


def _command(config: experiment.Config, profile: str, overrides: list[tuple[str, Any]]) -> str:
    """The ``python -m pidkd run`` line that trains ``config``."""
    sets = "".join(f" --set {key}={yaml.safe_dump(value, default_flow_style=True).strip()!r}" for key, value in overrides)
    teacher = config.teacher_kind if config.teacher else "trained"
    return (f"python -m pidkd run --profile {profile} --dataset {config.dataset} --teacher {teacher} "
            f"--method {config.method} --seed {config.seed}{sets}")


def _executor(args: argparse.Namespace) -> Any:
    """A submitit executor (Slurm, or its local executor), or None for local processes."""
    if args.launch == "processes":
        return None
    try:
        import submitit
    except ImportError as error:
        raise PidkdError("submitit is not installed; pip install 'pidkd[slurm]'") from error
    folder = experiment.results_root(args.results) / "submitit"
    if args.launch == "submitit-local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=args.timeout_min)
    else:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(timeout_min=args.timeout_min, gpus_per_node=args.gpus, slurm_partition=args.slurm_partition)
    return executor


def _sweep(args: argparse.Namespace) -> None:
    """List the grid (status, key, command), or launch its pending runs."""
    make = experiment.noise_grid if args.noise else experiment.grid
    configs = make(args.profile, dict(args.set))
    if args.launch is None:
        for config in configs:
            status = "done   " if experiment.is_finished(config, args.results) else "pending"
            print(f"{status} {config.key}  {_command(config, args.profile, args.set)}")
        return
    for dataset in sorted({c.dataset for c in configs}):  # once here, not in every job at the same time
        data.download(dataset, experiment.data_root())
    runs = experiment.run_grid(configs, jobs=args.jobs, root=args.results, device=args.device,
                               executor=_executor(args), speed=_speed(args))
    print(f"{len(runs)} runs finished under {experiment.results_root(args.results) / args.profile / 'runs'}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2, without a traceback."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "run":
            config = experiment.resolve(
                args.profile, args.dataset, args.teacher, args.method, args.seed, dict(args.set)
            )
            done = experiment.run(config, root=args.results, device=args.device, progress=not args.quiet, speed=_speed(args))
            print(f"{done.directory}  test_acc={done.final_accuracy:.4f}")
        elif args.command == "list":
            runs = experiment.collect_runs(args.profile, root=args.results)
            if runs.empty:
                print(f"no finished runs of profile {args.profile!r} under {experiment.results_root(args.results)}")
            else:
                last = runs.groupby("key").tail(1).set_index("key")
                print(last[experiment.RUN_COLUMNS[:-1] + ["epoch", "test_acc"]].to_string())
        elif args.command == "sweep":
            _sweep(args)
        else:
            folder = data.download(args.dataset, args.root)
            print(f"{args.dataset} ships inside its package: nothing to download" if folder is None else folder)
    except PidkdError as error:
        print(f"pidkd: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
