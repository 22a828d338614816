"""A CUDA machine checked in minutes, before a GPU-day is spent on it (``make gpu-check``,
``python -m pidkd check-gpu``): one short epoch of every method on CIFAR-shaped data with the
chosen speed options, losses finite and close to fp32's, images per second of each method, and
the time the ``quick`` and ``paper`` grids would take on this GPU at that speed."""
from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import TensorDataset

from ..distill.batching import AugmentedTensors, CropFlip
from ..distill.loop import fit
from ..distill.methods import METHODS, Outputs, build_method
from ..distill.models import build_model, feature_positions
from ..distill.settings import Precision, Recipe, Speed
from ..distill.teachers import Teacher
from .profiles import Profile

PAIR = ("wrn-40-2", "wrn-16-1")
"""The CIFAR teacher and student of the paper profiles."""

CIFAR_SPLITS = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000)}
"""Training and test images of the datasets whose grids are projected (CUB's ResNets at 224 px are
not timed here, so its runs are left out of projections)."""

AGREEMENT = 0.02
"""The relative difference from fp32 allowed for one batch's loss under mixed precision: bf16 keeps
8 bits of mantissa (a unit roundoff of 0.4%), and a forward pass through WRN-40-2 and WRN-16-1
accumulates a few of those roundings."""


def cifar_shaped(n_train: int, n_test: int, seed: int = 0) -> tuple[AugmentedTensors, TensorDataset]:
    """Random CIFAR-shaped images and labels, the training split augmented on the device (random
    crops and flips), so the teacher runs on every batch as in the paper profile."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n_train + n_test, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (n_train + n_test,), generator=generator)
    train = AugmentedTensors(images[:n_train], labels[:n_train], augment=CropFlip(4, (0.0, 0.0, 0.0)))
    return train, TensorDataset(images[n_train:], labels[n_train:])


def method_for(name: str, student: torch.nn.Module, teacher: Teacher, epochs: int, example: torch.Tensor
               ) -> torch.nn.Module:
    """Method ``name`` for this pair on inputs like ``example``; RID and TED in one round whose first
    epoch is the filter phase."""
    params = {"rounds": 1, "filter_fraction": 1 / epochs} if name in ("rid", "ted") else {}
    return build_method(name, student_channels=student.feature_channels, teacher_channels=teacher.feature_channels,
                        num_classes=10, feature_positions=feature_positions(student, example), **params)


def epoch_seconds(name: str, teacher: Teacher, student_model: str, train: TensorDataset, test: TensorDataset,
                  device: torch.device, epochs: int, speed: Speed, **options: object) -> tuple[float, list[dict]]:
    """Median wall seconds of the epochs after the first (which warms up: cuDNN autotuning,
    compilation), and every epoch's metrics; ``options`` are the student model's."""
    torch.manual_seed(0)
    student = build_model(student_model, 10, train.tensors[0].shape[1], **options)
    recipe = Recipe(batch_size=128, clip_grad_norm=None if name == "baseline" else 100.0)
    rows = fit(student, method_for(name, student, teacher, epochs, test[0][0]), train, test, recipe=recipe, epochs=epochs, seed=0,
               teacher=teacher, device=device, progress=False, speed=speed)
    return statistics.median(row["seconds"] for row in rows[1:]), rows


def loss_agreement(name: str, teacher: Teacher, student_model: str, x: torch.Tensor, y: torch.Tensor,
                   device: torch.device, speed: Speed) -> float:
    """Relative difference between one batch's loss under ``speed``'s precision and in fp32, from the
    same weights (RID in its student phase)."""
    losses = []
    for precision in (Precision(device, "fp32"), Precision(device, speed.precision)):
        torch.manual_seed(0)
        student = build_model(student_model, 10, x.shape[1]).to(device)
        method = method_for(name, student, teacher, 2, x[0]).to(device)
        phase = method.begin_epoch(1, 2)
        with torch.no_grad(), precision.autocast():
            batch = x.contiguous(memory_format=speed.layout(device, x[0]))
            student_out = Outputs(*student(batch))
            losses.append(method.loss(phase, student_out, teacher(batch), y).total.float().item())
    return abs(losses[1] - losses[0]) / abs(losses[0])


@dataclass(frozen=True)
class Timing:
    """One method's short epoch on this device."""

    method: str
    seconds: float
    images_per_second: float
    agreement: float
    finite: bool


def time_methods(device: torch.device, speed: Speed, n_train: int, n_test: int, epochs: int = 2,
                 methods: Sequence[str] = tuple(METHODS)) -> list[Timing]:
    """Each method's epoch (and the teacher's own training epoch, as method ``teacher``) on
    CIFAR-shaped data, with its agreement with fp32."""
    train, test = cifar_shaped(n_train, n_test)
    torch.manual_seed(1)
    teacher = Teacher(build_model(PAIR[0], 10, 3), "trained").to(device)
    x, y = train.tensors[0][:128].to(device), train.tensors[1][:128].to(device)
    timings = []
    for name in ("teacher", *methods):
        method, model = ("baseline", PAIR[0]) if name == "teacher" else (name, PAIR[1])
        seconds, rows = epoch_seconds(method, teacher, model, train, test, device, epochs, speed)
        finite = all(torch.isfinite(torch.tensor(row["train_loss"])) for row in rows)
        agreement = loss_agreement(method, teacher, model, x, y, device, speed)
        timings.append(Timing(name, seconds, (n_train + n_test) / seconds, agreement, finite))
    return timings


def projected_hours(profile: Profile, timings: Iterable[Timing]) -> tuple[float, int]:
    """Hours the profile's runs (main grid, noise sweep and teachers) would take at these speeds on
    its CIFAR datasets, and how many of its runs that covers."""
    speed = {t.method: t.images_per_second for t in timings}
    configs = profile.grid() + (profile.noise_grid() if profile.spec.noise_sweep else [])
    teachers = {c.teacher.training.key: c.teacher.training for c in configs if c.teacher and c.teacher.training}
    runs = {c.key: c for c in configs} | teachers
    seconds, covered = 0.0, 0
    for config in runs.values():
        if config.dataset not in CIFAR_SPLITS:
            continue
        n_train, n_test = CIFAR_SPLITS[config.dataset]
        classes = 100 if config.dataset == "cifar100" else 10
        n_train = min(n_train, (config.samples_per_class or n_train) * classes)
        rate = speed["teacher" if config in teachers.values() else config.method]
        seconds += config.epochs * (n_train + n_test) / rate
        covered += 1
    return seconds / 3600, covered


def report(device: torch.device, speed: Speed, n_train: int = 10_000, n_test: int = 2_000,
           profiles: Sequence[str] = ("quick", "paper")) -> tuple[list[str], bool]:
    """The check's lines and whether every method passed (finite losses, within AGREEMENT of fp32)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    began = time.perf_counter()
    timings = time_methods(device, speed, n_train, n_test)
    precision = Precision(device, speed.precision).dtype or torch.float32
    lines = [f"{PAIR[0]} -> {PAIR[1]} on {name}, precision {precision}, layout "
             f"{str(speed.layout(device, torch.zeros(3, 32, 32))).removeprefix('torch.')}, compile={speed.compile}; "
             f"{n_train} + {n_test} CIFAR-shaped images an epoch",
             f"{'method':>9} {'s/epoch':>8} {'images/s':>9} {'vs fp32':>8}  ok"]
    passed = True
    for t in timings:
        ok = t.finite and t.agreement <= AGREEMENT
        passed &= ok
        lines.append(f"{t.method:>9} {t.seconds:8.2f} {t.images_per_second:9.0f} {t.agreement:8.1e}  {'yes' if ok else 'NO'}")
    for profile_name in profiles:
        hours, covered = projected_hours(Profile.load(profile_name), timings)
        lines.append(f"projected: profile {profile_name!r}, {covered} CIFAR runs, {hours:.1f} h on this device "
                     "(one run at a time; CUB not timed)")
    lines.append(f"checked in {time.perf_counter() - began:.0f} s")
    return lines, passed

