"""The benchmark scripts still run (on a few images): they are how speed changes are measured."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
