"""Run identity: the frozen :class:`Config` of a run, everything that determines its numbers,
whose hash is the run's key and name on disk, and the :class:`TeacherConfig` it distils from."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ..distill.methods import Method
from ..distill.schema import Schema
from ..distill.settings import Recipe
from ..distill.teachers import Noise

Items = tuple[tuple[str, Any], ...]
"""A frozen, hashable mapping: sorted (name, value) pairs."""


def items(mapping: Mapping[str, Any]) -> Items:
    return tuple(sorted(mapping.items()))


@dataclass(frozen=True)
class TeacherConfig:
    """Which teacher a student distils from; ``training`` is the run that trains it (None for an
    untrained teacher)."""

    kind: str
    model: str
    seed: int
    training: Config | None = None
    options: Items = ()
    reestimate_bn: bool = False
    batch_statistics: bool = False
    noise: Noise | None = None

    def as_dict(self) -> dict[str, Any]:
        """The teacher as plain JSON values."""
        return _plain(self)


@dataclass(frozen=True)
class Config:
    """Everything that determines a run's numbers; its hash is the run's key.

    ``validation_per_class`` training examples of each class are held out as the validation split
    (``val_acc``), on which settings are chosen. At each of ``pid_epochs`` the test-set features of
    the ``pid_layers`` (indices into the distilled layers, -1 the last; empty for all) are saved as
    ``pid_dtype`` for PID measures. ``precision`` (fp32, bf16, fp16, fp64) is what the run trains in: it
    changes the numbers, so it is part of the key (:meth:`in_precision`).
    """

    profile: str
    dataset: str
    model: str
    seed: int
    epochs: int
    recipe: Recipe = Recipe()
    method: str = "baseline"
    params: Schema = Method.Params()
    """The method's parameters, its ``Params``."""
    teacher: TeacherConfig | None = None
    options: Items = ()
    samples_per_class: int | None = None
    validation_per_class: int = 0
    augment: bool = False
    evaluate_every: int = 1
    pid_epochs: tuple[int, ...] = ()
    pid_layers: tuple[int, ...] = ()
    pid_dtype: str = "float32"
    precision: str = "fp32"

    @property
    def key(self) -> str:
        """A short hash of the resolved config: the run's name on disk."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def teacher_kind(self) -> str:
        return self.teacher.kind if self.teacher else "none"

    def as_dict(self) -> dict[str, Any]:
        """The config as plain JSON values: what a run's config.json holds, and what its key hashes
        (the parameters as sorted [name, value] pairs, the form keys have always been computed on)."""
        plain = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        plain["params"] = [[name, value] for name, value in sorted(plain["params"].items())]
        return plain

    def in_precision(self, precision: str) -> Config:
        """This run trained in ``precision``, and so its trained teacher."""
        teacher = self.teacher
        if teacher is not None and teacher.training is not None:
            teacher = dataclasses.replace(teacher, training=teacher.training.in_precision(precision))
        return dataclasses.replace(self, precision=precision, teacher=teacher)


def _plain(value: Any) -> Any:
    """Dataclasses and schemas as dicts, tuples as lists: JSON values."""
    if isinstance(value, Config):
        return value.as_dict()
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def randomly_initialised(options: Items) -> Items:
    """Model options without ``pretrained``: the same architecture, not loaded from ImageNet."""
    return tuple(item for item in options if item[0] != "pretrained")


def unique(configs: Iterable[Config]) -> list[Config]:
    """``configs`` in order, each run once (baselines recur under every teacher kind)."""
    return list({c.key: c for c in configs}.values())
