"""The pid layer's own exception and warning: each message says what is wrong and how to fix it."""
from __future__ import annotations

from collections.abc import Iterable


class InputError(ValueError):
    """A bad input to a PID function: the message says what is wrong and how to fix it."""


class EstimateWarning(UserWarning):
    """A measurement whose estimator bias may be a sizeable share of it: more examples or fewer clusters fix it."""


def check_name(kind: str, name: str, valid: Iterable[str], error: type[Exception] = InputError) -> str:
    """Return ``name`` if it is one of ``valid``; otherwise raise ``error`` listing them."""
    valid = sorted(valid)
    if name not in valid:
        raise error(f"unknown {kind} {name!r}; valid names: {', '.join(valid)}")
    return name
