"""How run files are written and read: atomically (a crash never leaves a half-written file) and,
for checkpoints, with ``weights_only`` and an actionable error."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import CheckpointError


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file, then rename: readers never see a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint with ``weights_only=True``; an unreadable one gets an actionable error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(error).__name__}); it is truncated or not a "
            f"pidkd checkpoint: delete it to train this run from the start"
        ) from error
