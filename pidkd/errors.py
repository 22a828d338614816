"""Errors a user can act on: each message says what is wrong and how to fix it."""
from __future__ import annotations

from collections.abc import Iterable

from .pid import errors
from .pid.errors import EstimateWarning, InputError  # noqa: F401 (re-exported: the pid layer's own)


class PidkdError(Exception):
    """Base class of the errors pidkd raises for a user to fix; the CLI prints them, and the pid
    layer's :class:`InputError`, in one line."""


class ConfigError(PidkdError, ValueError):
    """A bad name or parameter in a configuration or a call."""


class DatasetNotFoundError(PidkdError, FileNotFoundError):
    """A dataset that is not on disk where pidkd looks for it."""


class WeightsNotFoundError(PidkdError, FileNotFoundError):
    """Pretrained weights that are neither cached nor downloadable."""


class CheckpointError(PidkdError):
    """A checkpoint or run file that cannot be read (truncated, corrupt, or from another version)."""


class RunInterrupted(PidkdError):
    """A run stopped by the user (Ctrl-C); its last finished epoch is saved, so rerunning resumes it."""


class StudyCheckFailed(PidkdError):
    """A study's number outside its tolerance of the committed reference: a change moved the study."""


def check_name(kind: str, name: str, valid: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``valid``; otherwise raise a ConfigError listing them."""
    return errors.check_name(kind, name, valid, ConfigError)
