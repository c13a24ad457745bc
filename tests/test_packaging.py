"""Every third-party module a Gatehouse package imports is installed with it: declared in its
pyproject.toml, or brought in by what it declares. The images install only the declared
dependencies (scripts/image-deps.py), so an import that is not covered works in .venv, where the
whole lock is installed, and fails in a container."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
PROJECTS = [REPO / "contracts", *sorted((REPO / "services").iterdir()), REPO / "cli"]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(project: Path) -> list[Requirement]:
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    return [Requirement(dep) for dep in meta.get("dependencies", [])]


def installed_with(requirements: list[Requirement]) -> set[str]:
    """The distributions pip installs for ``requirements`` on this Python, extras and markers
    evaluated as pip does."""
    local = {norm(tomllib.loads((p / "pyproject.toml").read_text())["project"]["name"]): p for p in PROJECTS}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(norm(r.name), frozenset(r.extras)) for r in requirements]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name in local:
            todo += [(norm(r.name), frozenset(r.extras)) for r in declared(local[name])]
            continue
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                todo.append((norm(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def imported(package: Path) -> set[str]:
    """Top-level names of the modules the package's code imports (absolute imports only)."""
    names: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and not n.startswith("gatehouse_")}


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_every_import_is_a_declared_dependency(project: Path) -> None:
    providers = importlib.metadata.packages_distributions()
    available = installed_with(declared(project))
    missing = {}
    for package in project.glob("gatehouse_*"):
        for module in imported(package):
            dists = {norm(d) for d in providers.get(module, [module])}
            if not dists & available:
                missing[module] = sorted(dists)
    assert not missing, f"{project.name}/pyproject.toml does not bring in {missing}"
