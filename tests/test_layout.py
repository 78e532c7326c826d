"""The package's shape: no private name crosses a module boundary (the import layers themselves
are checked by import-linter, `lint-imports`, from the contracts in pyproject.toml)."""

from __future__ import annotations

import ast
from pathlib import Path

import wsnas

SRC = Path(wsnas.__file__).resolve().parent


def private_imports(root: Path) -> list[str]:
    """``file:line module.name`` for every ``from wsnas... import _name`` under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wsnas"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(root)}:{node.lineno} {node.module}.{alias.name}")
    return found


def test_no_underscore_name_is_imported_across_modules():
    assert private_imports(SRC) == []


def test_the_examples_use_only_public_names():
    """examples/ (docs/python.md's scripts, the plug-in package) is what users copy: public API only."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    assert sorted(examples.rglob("*.py")) and private_imports(examples) == []


def test_the_check_finds_a_private_import(tmp_path):
    (tmp_path / "a.py").write_text("from wsnas.strategies.base import _hidden\nfrom wsnas import __version__\n")
    assert private_imports(tmp_path) == ["a.py:1 wsnas.strategies.base._hidden"]
