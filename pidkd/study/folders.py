"""Where results and datasets live: the repository's folders unless told otherwise, and one
profile's runs to a results folder."""
from __future__ import annotations

import os
from pathlib import Path

from ..distill.files import write_atomic
from ..errors import ConfigError

CHECKOUT = Path(__file__).resolve().parents[2]
"""The folder above the package: a clone of the repository when it holds ``pyproject.toml``."""


def _default(folder: str) -> Path:
    """``folder`` of the repository the package runs from, else of the working folder (a pip install)."""
    return CHECKOUT / folder if (CHECKOUT / "pyproject.toml").is_file() else Path(folder).resolve()


def results_root(root: str | Path | None = None) -> Path:
    """Where results live: ``root``, else ``$PIDKD_RESULTS``, else the repository's ``results/``,
    whatever folder a kernel or shell started in; a file there is a ConfigError."""
    path = Path(root or os.environ.get("PIDKD_RESULTS") or _default("results"))
    if path.exists() and not path.is_dir():
        raise ConfigError(f"the results folder {path} is a file: name a folder (--results or $PIDKD_RESULTS)")
    return path


def data_root(root: str | Path | None = None) -> Path:
    """Where file-backed datasets are read from: ``root``, else ``$PIDKD_DATA``, else the repository's ``data/``."""
    return Path(root or os.environ.get("PIDKD_DATA") or _default("data"))


OWNER = "profile-source.txt"
"""In ``results/<profile>``: which profile (a shipped name or a file's path) the folder's runs belong to."""


def claim_results(folder: Path, source: str, write: bool = True) -> None:
    """Make sure ``folder`` holds the results of the profile ``source`` alone (two profile files of
    one name, or a file named like a shipped profile, would otherwise mix their runs); with
    ``write``, mark an unclaimed folder as the profile's."""
    owner = folder / OWNER
    if owner.is_file():
        found = owner.read_text().strip()
        if found != source:
            raise ConfigError(f"{folder} holds the results of profile {found}, not of {source}: rename your profile "
                              f"file, or keep its results elsewhere (--results or $PIDKD_RESULTS)")
    elif write:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(owner, source + "\n")
