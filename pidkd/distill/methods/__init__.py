"""Distillation methods, one module each. A method is a module that owns its extra parameters,
maps an epoch to a phase, and gives the loss of a batch in that phase, by named terms; the training
loop does the rest. Each declares its settings as a ``Params`` schema: :data:`METHODS` is the
registry that profiles' schema is generated from."""
from __future__ import annotations

from ...errors import ConfigError, check_name
from ..schema import validate
from .base import FILTER, STUDENT, Baseline, Loss, Method, Outputs
from .kd import KD
from .rid import RID, TED
from .vid import VID

__all__ = ["FILTER", "METHODS", "STUDENT", "KD", "RID", "TED", "VID", "Baseline", "Loss", "Method", "Outputs",
           "build_method"]

METHODS: dict[str, type[Method]] = {
    "baseline": Baseline,
    "kd": KD,
    "vid": VID,
    "rid": RID,
    "ted": TED,
}


def build_method(
    name: str,
    *,
    student_channels: tuple[int, ...],
    teacher_channels: tuple[int, ...],
    num_classes: int,
    feature_positions: tuple[int, ...] | None = None,
    params: Method.Params | None = None,
    **values: object,
) -> Method:
    """Make method ``name`` for features with the given channel counts (and positions, which RID's
    flat head needs), with its parameters: ``params``, its ``Params`` as a profile resolved them,
    or else ``values`` validated against its ``Params`` (unknown ones and bad values are ConfigErrors)."""
    cls = METHODS[check_name("method", name, METHODS)]
    if params is None:
        params = validate(cls.Params, values, f"methods.{name}")
    elif values or type(params) is not cls.Params:
        raise ConfigError(f"method {name!r} takes its own Params, or values to validate, not both")
    return cls(params, student_channels=student_channels, teacher_channels=teacher_channels, num_classes=num_classes,
               feature_positions=feature_positions)
