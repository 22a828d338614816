"""The base of every validated setting (recipes, speed options, noise, model options, method
parameters, profiles): frozen, typed and range-checked by pydantic, unknown keys refused with the
valid ones listed. Built directly, a bad one raises pydantic's ValidationError; read from a
profile or the command line (:func:`validate`), one :class:`~pidkd.errors.ConfigError` line."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import ConfigError

_SHOWN = 60
"""At most this many characters of a bad value are quoted in a message."""


class Schema(BaseModel):
    """A frozen set of validated fields. Each component declares its own (``Recipe``, ``Noise``,
    ``RID.Params``, ...) and :class:`pidkd.study.spec.ProfileSpec` composes them into the one schema of
    a profile, validated once when it is loaded."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, fields: Any) -> Any:
        """Refuse a misspelt key, naming the valid ones (pydantic would only say it is extra)."""
        if isinstance(fields, Mapping):
            unknown = sorted(map(str, set(fields) - set(cls.model_fields)))
            if unknown:
                raise ValueError(f"unknown key {', '.join(map(repr, unknown))}; valid keys: {', '.join(cls.model_fields)}")
        return fields


def describe(error: ValidationError, where: str) -> str:
    """A pydantic error as one line: ``where: section.key: what is wrong (got the value)``."""
    problems = []
    for problem in error.errors():
        location = ".".join(map(str, problem["loc"]))
        message = problem["msg"].removeprefix("Value error, ")
        shown = repr(problem["input"])
        got = "" if problem["type"] in ("value_error", "missing") else f" (got {shown[:_SHOWN]})"
        problems.append(f"{location}: {message}{got}" if location else f"{message}{got}")
    return f"{where}: {'; '.join(problems)}"


def validate(schema: type[Schema], fields: Any, where: str) -> Schema:
    """``fields`` (a mapping, e.g. read from YAML) as a ``schema``, or a ConfigError naming ``where``."""
    try:
        return schema.model_validate(fields)
    except ValidationError as error:
        raise ConfigError(describe(error, where)) from error
