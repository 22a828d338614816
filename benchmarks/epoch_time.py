"""Training speed of each method on whatever device is present: images per second, seconds per
epoch, and the ratio of each method's epoch to the baseline's, measured in the same process.

    python benchmarks/epoch_time.py                      # CIFAR-shaped WRN-40-2 -> WRN-16-1
    python benchmarks/epoch_time.py --compile            # with torch.compile
    python benchmarks/epoch_time.py --shape mnist1d      # the embedded nets and data, against their floor

Random tensors of the dataset's shape stand in for the data (CIFAR-10's 50,000 training and
10,000 test images by default on CUDA, fewer on a CPU); CIFAR-shaped batches are augmented on
the device with random crops and flips, so the teacher runs on every batch, as in the paper
profile. Each method trains ``--epochs`` epochs (RID and TED: one round, its first epoch the
filter phase); the first epoch warms up (cuDNN autotuning, compilation) and is not counted.
An epoch includes the test pass. ``--shape mnist1d`` trains the embedded profile's 1-D WRNs on
its 100 MNIST-1D examples a class and tests on MNIST-1D's 2,000 test examples, and adds a floor
to compare with: a baseline epoch plus one inference pass of the teacher over the training set.
(``benchmarks/run_time.py`` times whole embedded runs and where their time goes.)
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import TensorDataset

from pidkd.distill.batching import batches
from pidkd.distill.data import load_dataset
from pidkd.distill.methods import METHODS
from pidkd.distill.models import build_model
from pidkd.distill.settings import PRECISIONS, Precision, Speed, resolve_device
from pidkd.distill.teachers import Teacher
from pidkd.study.gpucheck import cifar_shaped, epoch_seconds

SHAPES = {"cifar": ("wrn-40-2", "wrn-16-1", {}), "mnist1d": ("wrn1d-16-2", "wrn1d-10-1", {"block": "post"})}
"""Teacher, student and their model options for each shape."""
CIFAR_EPOCH = 50_000 + 10_000
"""Images in one CIFAR-10 epoch: the training set, then the test pass."""


def teacher_pass_seconds(teacher: Teacher, train: TensorDataset, device: torch.device) -> float:
    """Seconds of one inference pass of the teacher over the training set."""
    began = time.perf_counter()
    with torch.inference_mode():
        for x, _ in batches(train, 512, shuffle=False):
            teacher(x.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=SHAPES, default="cifar")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=None, help="training images (default 50,000 on CUDA, 1,024 else)")
    parser.add_argument("--test-n", type=int, default=None, help="test images (default 10,000 on CUDA, 256 else)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=sorted(METHODS), choices=sorted(METHODS))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first one only warms up")
    device = resolve_device(args.device)
    speed = Speed(precision=args.precision, channels_last=False if args.no_channels_last else None,
                  compile=args.compile, workers=0)
    teacher_model, student_model, options = SHAPES[args.shape]
    if args.shape == "cifar":
        cuda = device.type == "cuda"
        train, test = cifar_shaped(args.n or (50_000 if cuda else 1_024), args.test_n or (10_000 if cuda else 256))
    else:
        train = load_dataset("mnist1d", split="train", samples_per_class=100, validation_per_class=100)
        test = load_dataset("mnist1d", split="test")
    torch.manual_seed(1)
    teacher = Teacher(build_model(teacher_model, 10, train.tensors[0].shape[1], **options), "trained").to(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{device} ({torch.get_num_threads()} threads)"
    print(f"{teacher_model} -> {student_model} on {name}: {len(train)} training and {len(test)} test images, "
          f"{args.epochs} epochs (first not counted), precision {Precision(device, speed.precision).dtype or torch.float32}, "
          f"layout {str(speed.layout(device, test[0][0])).removeprefix('torch.')}, compile={speed.compile}")

    methods = ["baseline", *[m for m in args.methods if m != "baseline"]]
    seconds = {m: epoch_seconds(m, teacher, student_model, train, test, device, args.epochs, speed, **options)[0]
               for m in methods}
    floor = seconds["baseline"] + teacher_pass_seconds(teacher, train, device) if args.shape == "mnist1d" else None
    header = f"{'method':>9} {'s/epoch':>9} {'images/s':>9} {'x baseline':>10}"
    header += f" {'x floor':>8}" if floor else f" {'s/CIFAR-10 epoch':>17}"
    print(header)
    for method, s in seconds.items():
        line = f"{method:>9} {s:9.3f} {len(train) / s:9.0f} {s / seconds['baseline']:10.2f}"
        line += f" {s / floor:8.2f}" if floor else f" {s * CIFAR_EPOCH / (len(train) + len(test)):17.1f}"
        print(line)


if __name__ == "__main__":
    main()
