"""The benchmark scripts still run (on a few images): they are how speed changes are measured."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def test_epoch_time_reports_each_method_against_the_baseline():
    args = ["--n", "16", "--test-n", "8", "--epochs", "2", "--methods", "rid", "--precision", "fp32"]
    done = subprocess.run([sys.executable, BENCHMARKS / "epoch_time.py", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "precision torch.float32" in lines[0] and "wrn-40-2 -> wrn-16-1" in lines[0]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert set(rows) == {"baseline", "rid"} and float(rows["baseline"][2]) == 1.0
    assert float(rows["rid"][0]) > 0 and float(rows["rid"][2]) > 0


def test_measure_speed_times_measure_and_its_bootstrap():
    args = ["--n", "200", "--dim", "64", "--resamples", "20", "--repeats", "1"]
    done = subprocess.run([sys.executable, BENCHMARKS / "measure_speed.py", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "n 200, dim 64, 10 clusters, 10 components" in lines[0]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:]}
    assert set(rows) == {"measure", "bootstrap=20"}
    assert float(rows["measure"][0]) > 0 and rows["bootstrap=20"][1] == "30"


def test_run_time_breaks_a_run_down_counts_its_flops_and_compares_old_and_new_bitwise(tmp_path):
    study = tmp_path / "runs.csv"  # a teacher's 10 s and a baseline's 30 s (two epochs of it); RID none
    study.write_text("model,method,seconds\nwrn1d-16-2,baseline,10\nwrn1d-10-1,baseline,20\nwrn1d-10-1,baseline,10\n")
    args = ["--methods", "baseline", "rid", "--epochs", "20", "--evaluate-every", "10", "--samples-per-class", "5",
            "--validation-per-class", "5", "--flops", "--study", str(study), "--compare", "--repeats", "1"]
    done = subprocess.run([sys.executable, BENCHMARKS / "run_time.py", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "50 training, 50 validation and 2000 test examples, 20 epochs" in lines[0]
    shares = {line.split()[0]: line.split()[1:] for line in lines[2:4]}
    assert set(shares) == {"baseline", "rid"} and all(float(row[0]) > 0 for row in shares.values())
    start = next(i for i, line in enumerate(lines) if "GFLOP/s  share" in line)
    rates = {line.split()[0]: line.split()[1:] for line in lines[start + 1:start + 3]}
    assert set(rates) == {"baseline", "rid"} and float(rates["rid"][0]) > float(rates["baseline"][0]) > 0
    assert all(0 < float(row[3].rstrip("%")) < 100 for row in rates.values())
    teacher = float(lines[start + 3].split()[4].rstrip("%"))
    assert lines[start + 3].split()[0] == "teacher" and 0 < teacher < 100
    weighted = (10 * teacher + 30 * float(rates["baseline"][3].rstrip("%"))) / 40
    share = next(line for line in lines if line.startswith("the study's training"))
    assert "baseline 30 s, teacher 10 s" in share and float(share.split("reaches ")[1].split("%")[0]) == pytest.approx(weighted, abs=0.1)
    start = next(i for i, line in enumerate(lines) if "bitwise equal" in line)
    compared = {line.split()[0]: line.split()[1:] for line in lines[start + 1:start + 3]}
    assert set(compared) == {"baseline", "rid"} and all(row[-1] == "yes" for row in compared.values())


def test_batched_seeds_folds_the_seeds_into_one_network_with_the_sequential_runs_numbers():
    args = ["--seeds", "2", "--epochs", "2", "--repeats", "1", "--precision", "fp64"]
    done = subprocess.run([sys.executable, BENCHMARKS / "batched_seeds.py", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = [line.split() for line in lines if line.split()[:1] in (["0"], ["1"])]
    assert len(rows) == 2 and all(float(row[1]) < 1e-12 and float(row[2]) == 0 for row in rows)  # loss, test accuracy
    assert "sequential/batched" in lines[-1]
