"""Seconds per epoch of each distillation method against its floor: a student-only (baseline)
epoch plus one pass of the frozen teacher over the same data, measured in the same process.

    python benchmarks/method_speed.py              # embedded (MNIST-1D) and CIFAR-shaped WRNs
    python benchmarks/method_speed.py --cifar-n 1024 --device cuda

Each method trains two epochs (RID and TED as one round: a filter epoch, then a student epoch);
the figure is the median over ``--repeats`` of wall seconds per epoch, teacher-output caching
included. Tensor datasets are not augmented, so the loop computes the teacher's outputs once.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import TensorDataset

from pidkd.data import batches, load_dataset
from pidkd.methods import METHODS, build_method
from pidkd.models import build_model
from pidkd.teachers import Teacher
from pidkd.train import Recipe, fit, resolve_device

EPOCHS = 2


def _median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def bench(name: str, teacher_model: str, student_model: str, train, test, device, repeats: int) -> None:
    num_classes = int(train.tensors[1].max()) + 1
    in_channels = train.tensors[0].shape[1]
    recipe = Recipe(batch_size=128, clip_grad_norm=100.0)  # the paper's recipe for distillation
    torch.manual_seed(0)
    teacher = Teacher(build_model(teacher_model, num_classes, in_channels), "trained").to(device)

    def teacher_pass() -> None:
        with torch.inference_mode():
            for x, _ in batches(train, 512, shuffle=False):
                teacher(x.to(device))

    def train_epochs(method_name: str) -> None:
        torch.manual_seed(0)
        student = build_model(student_model, num_classes, in_channels)
        params = {"rounds": 1} if method_name in ("rid", "ted") else {}
        method = build_method(
            method_name,
            student_channels=student.feature_channels,
            teacher_channels=teacher.feature_channels,
            num_classes=num_classes,
            **params,
        )
        fit(student, method, train, test, recipe=recipe, epochs=EPOCHS, seed=0, teacher=teacher, device=device, progress=False)

    floor = _median_seconds(lambda: train_epochs("baseline"), repeats) / EPOCHS + _median_seconds(teacher_pass, repeats)
    print(f"\n{name}: {len(train)} training examples, device {device}, median of {repeats}")
    print(f"{'method':>9} {'s/epoch':>8} {'ratio to floor':>15}")
    print(f"{'floor':>9} {floor:8.3f} {1.0:15.2f}   (baseline epoch + teacher inference pass)")
    for method_name in sorted(METHODS):
        seconds = _median_seconds(lambda: train_epochs(method_name), repeats) / EPOCHS
        print(f"{method_name:>9} {seconds:8.3f} {seconds / floor:15.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cifar-n", type=int, default=256, help="CIFAR-shaped random examples")
    args = parser.parse_args()
    device = resolve_device(args.device)

    train, test = load_dataset("mnist1d", train=True), load_dataset("mnist1d", train=False)
    bench("embedded MNIST-1D, cnn1d-teacher -> cnn1d-student", "cnn1d-teacher", "cnn1d-student", train, test, device, args.repeats)

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.cifar_n + 128, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (args.cifar_n + 128,), generator=generator)
    cifar_train = TensorDataset(images[: args.cifar_n], labels[: args.cifar_n])
    cifar_test = TensorDataset(images[args.cifar_n :], labels[args.cifar_n :])
    bench("CIFAR-shaped random tensors, wrn-40-2 -> wrn-16-1", "wrn-40-2", "wrn-16-1", cifar_train, cifar_test, device, args.repeats)


if __name__ == "__main__":
    main()
