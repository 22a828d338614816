"""pidkd's three layers import one way only, pid <- distill <- study: the PID estimator knows no
torch and nothing else of pidkd, distillation knows no profiles or results folders, and every
module stays small enough to read in one sitting."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pidkd"
MODULES = sorted(PACKAGE.rglob("*.py"))

ALLOWED = {
    "pidkd.pid": {"pidkd.pid"},
    "pidkd.distill": {"pidkd.pid", "pidkd.distill", "pidkd.errors"},
    "pidkd.errors": {"pidkd.pid"},
}
"""What each layer may import of pidkd; the study layer and the entry points may import any of it."""

PID_LIBRARIES = {"numpy", "scipy", "sklearn", "threadpoolctl"}
"""All the pid layer may import besides the standard library."""

MOST_LINES = 400


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (inside functions too), as absolute names."""
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}  # a name may be a module
    return found


def _layer(name: str) -> str | None:
    return next((layer for layer in ALLOWED if name == layer or name.startswith(layer + ".")), None)


def _violations(path: Path) -> list[str]:
    layer = _layer(_name(path))
    if layer is None:
        return []
    ours = {name for name in _imports(path) if name == "pidkd" or name.startswith("pidkd.")}
    bad = [name for name in ours if _layer(name) not in ALLOWED[layer] and name != "pidkd"]
    if layer == "pidkd.pid":
        outside = {name.split(".")[0] for name in _imports(path)} - {"pidkd", "__future__"} - PID_LIBRARIES
        bad += sorted(name for name in outside if name not in sys.stdlib_module_names)
    return sorted(bad)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    assert _violations(path) == [], f"{_name(path)} imports across its layer"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_long(path):
    assert len(path.read_text().splitlines()) <= MOST_LINES


def test_the_rule_catches_an_import_up_the_layers(tmp_path, monkeypatch):
    """The checker itself: a distill module reaching the study layer, or a pid module reaching torch."""
    for folder, text, expected in [("distill", "from ..study import grids\n", ["pidkd.study", "pidkd.study.grids"]),
                                   ("pid", "import torch\nfrom .. import errors\n", ["pidkd.errors", "torch"])]:
        fake = tmp_path / "pidkd" / folder / "probe.py"
        fake.parent.mkdir(parents=True, exist_ok=True)
        fake.write_text(text)
        monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "pidkd")
        assert _violations(fake) == expected
