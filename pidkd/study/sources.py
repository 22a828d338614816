"""Where a profile comes from: a shipped name or a YAML file, which may ``extends`` another, and
the dotted-key overrides (``section.key``) put over it."""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, check_name
from .spec import merge


def profile_names() -> list[str]:
    """The profiles that ship with pidkd."""
    files = resources.files("pidkd.profiles").iterdir()
    return sorted(p.name.removesuffix(".yaml") for p in files if p.name.endswith(".yaml"))


def is_profile_file(profile: str | Path) -> bool:
    """Whether ``profile`` names a YAML file rather than a shipped profile."""
    return str(profile).endswith((".yaml", ".yml"))


def profile_name(profile: str | Path) -> str:
    """The name a profile's results go under (``results/<name>``): a shipped profile's own name, a
    file's name without its folder and suffix."""
    return Path(str(profile)).stem if is_profile_file(profile) else str(profile)


def read(profile: str, extended: tuple[str, ...] = ()) -> dict[str, Any]:
    """A profile's YAML as a dict, with the profile it ``extends`` merged under it."""
    if profile in extended:
        raise ConfigError(f"profile {profile!r} extends itself through {' -> '.join(extended)}")
    if is_profile_file(profile):
        path = Path(profile)
        if not path.is_file():
            raise ConfigError(f"profile file {path} does not exist")
        text, where = path.read_text(), str(path)
    else:
        check_name("profile", profile, profile_names())
        text, where = resources.files("pidkd.profiles").joinpath(f"{profile}.yaml").read_text(), f"profile {profile!r}"
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where} is not valid YAML{at}: {getattr(error, 'problem', None) or error}") from error
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a YAML mapping of sections, not {type(spec).__name__}")
    base = spec.pop("extends", None)
    return merge(read(str(base), (*extended, profile)), spec) if base else spec


def set_entry(spec: dict[str, Any], dotted: str, value: Any) -> None:
    """Set the entry ``dotted`` (``section.key``) of a raw profile, making sections as needed."""
    node = spec
    *parents, leaf = dotted.split(".")
    for depth, name in enumerate(parents):
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {'.'.join(parents[:depth + 1])} is a value, not a section")
    node[leaf] = copy.deepcopy(value)
