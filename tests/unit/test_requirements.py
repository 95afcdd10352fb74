"""The dependency files agree: the hashed locks match the direct requirements, and every
distribution the code imports is declared where it is installed from."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")  # extras: moto[server]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def direct(path: Path) -> dict[str, str]:
    """Pins of a requirements file, following `-r` includes."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("-r "):
            pins.update(direct(path.parent / line[3:].strip()))
        elif match := PIN.match(line):
            pins[canonical(match[1])] = match[2]
    return pins


def locked(path: Path) -> dict[str, tuple[str, bool, set[str]]]:
    """name -> (version, every file hashed, what it is required via) from a uv/pip-tools lock."""
    entries: dict[str, tuple[str, bool, set[str]]] = {}
    name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            name = canonical(match[1])
            entries[name] = (match[2], line.rstrip().endswith("\\"), set())
        elif name and (via := re.match(r"\s*#\s+(?:via\s+)?(-r \S+|[A-Za-z0-9][\w.-]*)\s*$", line)) and via[1] != "via":
            entries[name][2].add(via[1])
    return entries


@pytest.mark.parametrize(
    ("source", "lock"), [("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")]
)
def test_lock_is_fresh_against_the_direct_requirements(source: str, lock: str) -> None:
    wanted = direct(ROOT / source)
    entries = locked(ROOT / lock)
    stale = {
        name: (pin, entries.get(name, ("missing",))[0])
        for name, pin in wanted.items()
        if entries.get(name, ("",))[0] != pin
    }
    assert not stale, f"run `make lock`: {stale}"
    # A requirement removed from the .txt files leaves a lock entry still marked "-r <file>".
    orphans = {
        name for name, (_, _, via) in entries.items() if any(v.startswith("-r ") for v in via) and name not in wanted
    }
    assert not orphans, f"run `make lock`: no longer required {sorted(orphans)}"
    unhashed = [name for name, (_, hashed, _) in entries.items() if not hashed]
    assert not unhashed, f"entries without hashes: {unhashed}"


def test_runtime_lock_agrees_with_the_dev_lock() -> None:
    runtime, dev = locked(ROOT / "requirements.lock"), locked(ROOT / "requirements-dev.lock")
    assert {n: v[0] for n, v in runtime.items() if n in dev} == {n: dev[n][0] for n in runtime if n in dev}
    assert set(runtime) <= set(dev)


def imported_distributions(*paths: str) -> set[str]:
    modules: set[str] = set()
    for relative in paths:
        path = ROOT / relative
        for file in [path] if path.is_file() else path.rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    owners = importlib.metadata.packages_distributions()
    own = {"app", "tests", "__future__"}
    return {canonical(owners[module][0]) for module in modules - own - set(sys.stdlib_module_names) if module in owners}


def test_every_module_the_app_imports_is_a_declared_runtime_requirement() -> None:
    used = imported_distributions("app", "wsgi.py", "gunicorn.conf.py", "migrations")
    assert used - set(direct(ROOT / "requirements.txt")) == set()


def test_every_module_the_tests_import_is_a_declared_requirement() -> None:
    assert imported_distributions("tests") - set(direct(ROOT / "requirements-dev.txt")) == set()
