"""Revisions never import application code, so an old revision still runs after the app changes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
REVISIONS = sorted((MIGRATIONS / "versions").glob("*.py"))


def imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("revision", REVISIONS, ids=lambda path: path.name[:12])
def test_revision_imports_no_application_code(revision: Path) -> None:
    source = revision.read_text(encoding="utf-8")
    assert not {m for m in imported_modules(source) if m == "app" or m.startswith("app.")}


def test_the_revision_template_imports_no_application_code() -> None:
    template = (MIGRATIONS / "script.py.mako").read_text(encoding="utf-8")
    assert "import app" not in template and "from app" not in template
    assert "UTC_DATETIME = " in template
