"""Helper for the Dockerfile: keep the images to the runtime dependencies, pinned by the lock.

requirements.lock pins every third-party package the project uses, test and dev tools included
(pytest, playwright, mypy, ...). The images need only what the Gatehouse packages depend on, at
exactly the locked versions. So the Dockerfile does

    python scripts/image-deps.py requirements > /tmp/requirements.txt   # from the pyprojects
    pip install -c requirements.lock -r /tmp/requirements.txt           # lock = constraints
    pip install --no-deps ./contracts ./services/...                    # the local packages
    python scripts/image-deps.py verify                                 # nothing unpinned

`verify` fails if any installed distribution is missing from requirements.lock or differs from
its pin (pip only enforces constraints on packages the lock names), so an image never carries a
version that the test suite did not run against.

Python 3.11 standard library only.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECTS = ["contracts/pyproject.toml", "services/*/pyproject.toml"]
LOCAL = re.compile(r"^gatehouse[-_.]", re.IGNORECASE)
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;\\#]+)")
# Installer tooling present in any venv; not part of what the services import.
TOOLING = {"pip", "setuptools", "wheel"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(root: Path) -> list[str]:
    deps: set[str] = set()
    for pattern in PYPROJECTS:
        for path in sorted(root.glob(pattern)):
            project = tomllib.loads(path.read_text())["project"]
            deps.update(d.strip() for d in project.get("dependencies", []))
    return sorted(d for d in deps if not LOCAL.match(d))


def lock_pins(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        m = PIN.match(line)
        if m:
            pins[norm(m.group(1))] = m.group(2)
    return pins


def verify(lock: Path) -> list[str]:
    pins = lock_pins(lock)
    problems = []
    for dist in importlib.metadata.distributions():
        name = norm(dist.metadata["Name"])
        if name in TOOLING or LOCAL.match(name):
            continue
        if name not in pins:
            problems.append(f"{dist.metadata['Name']}=={dist.version} is not in {lock.name}")
        elif pins[name] != dist.version:
            problems.append(f"{dist.metadata['Name']}=={dist.version}, {lock.name} pins {pins[name]}")
    return sorted(problems)


def main(argv: list[str]) -> int:
    if argv == ["requirements"]:
        print("\n".join(runtime_requirements(ROOT)))
        return 0
    if argv == ["verify"]:
        problems = verify(ROOT / "requirements.lock")
        for p in problems:
            print(f"image-deps: {p}", file=sys.stderr)
        return 1 if problems else 0
    print("usage: image-deps.py requirements|verify", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
