"""The notebooks' first cell, :data:`CELL`: on Colab it puts pidkd's clone under ``/content`` on
the path and :func:`install` installs it; elsewhere it does nothing. Standard library only: it runs
before pidkd's dependencies are installed."""
from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

CELL = '''\
import glob, pathlib, sys  # on Colab: install pidkd from its clone under /content (README, "Colab")
sys.path[:0] = [str(pathlib.Path(init).parents[1]) for init in glob.glob("/content/*/pidkd/__init__.py")][:1]
from pidkd.study import colab; colab.install()  # elsewhere this does nothing'''
"""The first code cell of every notebook (a test keeps them equal to it)."""


def install() -> None:
    """On Colab, pip-install (editable) the clone pidkd is imported from, with its dependencies,
    unless it is installed already; a failed install ends the cell with what to do."""
    if "google.colab" not in sys.modules or _installed():
        return
    clone = Path(__file__).resolve().parents[2]
    if not (clone / "pyproject.toml").is_file():
        raise SystemExit(f"pidkd at {clone} is not a clone of its repository: git clone it under /content, "
                         f"then rerun this cell (README, 'Colab')")
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", str(clone)]).returncode:
        raise SystemExit(f"pip could not install pidkd from {clone} (its output is above); fix that, then rerun this cell")
    importlib.invalidate_caches()


def _installed() -> bool:
    try:
        importlib.metadata.version("pidkd")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True
