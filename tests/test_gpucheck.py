"""``make gpu-check``: without CUDA it says so and exits 0; its timing, fp32 agreement and grid
projections, run here on the CPU with a few images."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from pidkd.distill.settings import Speed
from pidkd.study import gpucheck
from pidkd.study.profiles import Profile


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run for real")
def test_without_cuda_the_check_says_so_and_succeeds():
    done = subprocess.run([sys.executable, "-m", "pidkd", "check-gpu"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("no CUDA device here: nothing to check")


def test_the_check_times_every_method_and_compares_it_with_fp32():
    lines, passed = gpucheck.report(torch.device("cpu"), Speed(precision="bf16"), n_train=16, n_test=4, profiles=("quick",))
    rows = {line.split()[0]: line.split() for line in lines[2:8]}
    assert set(rows) == {"teacher", "baseline", "kd", "vid", "rid", "ted"}
    assert passed and all(row[-1] == "yes" and 0 < float(row[3]) <= gpucheck.AGREEMENT for row in rows.values())
    assert lines[8].startswith("projected: profile 'quick', 34 CIFAR runs")


def test_a_projection_counts_every_epoch_of_every_run_and_teacher():
    rates = [gpucheck.Timing(m, 1.0, 1000.0, 0.0, True) for m in ("teacher", "baseline", "kd", "vid", "rid", "ted")]
    hours, covered = gpucheck.projected_hours(Profile.load("quick"), rates)
    # 15 grid runs, 18 noise-sweep runs (its baselines are the grid's) and the teacher: 40 epochs of 10,000 + 10,000 images
    assert covered == 34 and hours == pytest.approx(34 * 40 * 20_000 / 1000 / 3600)
    _, paper = gpucheck.projected_hours(Profile.load("paper"), rates)
    # per CIFAR dataset: 13 runs x 3 seeds, the noise sweep's 18 less the 6 at the grid's own sigma, a teacher
    assert paper == 2 * (39 + 12 + 1)
