# ruff: noqa: S101, S603  (starts py-spy)
"""Profiling for ``bench/run.py --profile``: py-spy samplers on a service process, and the summary
tables (self and inclusive time by function and package, our code's hot spots) from their output."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# ------------------------------------------------------------------------------------------
# py-spy
# ------------------------------------------------------------------------------------------


def pyspy_binary() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_pyspy(pid: int, out: Path, duration: float) -> list[subprocess.Popen[bytes]]:
    """Two non-blocking samplers on one process: collapsed stacks (for the tables) and a flame graph."""
    spy = pyspy_binary()
    assert spy
    common = [
        "record",
        "--pid",
        str(pid),
        "--rate",
        "200",
        "--duration",
        str(int(duration)),
        "--nonblocking",
        "--gil",
        "--subprocesses",
    ]
    return [
        subprocess.Popen(
            [spy, *common, "--format", fmt, "-o", str(out.with_suffix(ext))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fmt, ext in (("raw", ".txt"), ("flamegraph", ".svg"))
    ]


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for pkg in ("gatehouse_gateway", "gatehouse_contracts", "gatehouse_identity", "gatehouse_sync_worker"):
        if f"{pkg}/" in path:
            return pkg
    parts = path.split("/")
    if "python3.11" in parts:
        rest = parts[parts.index("python3.11") + 1 :]
        return f"stdlib:{rest[0].removesuffix('.py')}" if rest else "stdlib"
    return parts[-1]


def _short(path: str) -> str:
    for marker in ("site-packages/", "services/gateway/", "services/identity/", "contracts/", "python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


OWN = ("gatehouse_gateway/", "gatehouse_contracts/", "gatehouse_identity/", "gatehouse_sync_worker/")


def summarize_profile(raw: Path, top: int = 15) -> dict[str, Any]:
    """From py-spy's raw (collapsed) output: self and inclusive shares per function, self share per
    package, and the hot spots at the border of our own code: for each sample the innermost
    gatehouse_* frame and the library function it called (``(self)`` when the sample is in our code)."""
    self_time: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    own_incl: Counter[str] = Counter()
    border: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    if not raw.exists():
        return {"samples": 0}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = []
        for frame in stack.split(";"):
            m = _FRAME.match(frame.strip())
            if m is None:
                continue  # process / thread names
            frames.append((m["func"], m["file"]))
        if not frames:
            continue
        total += count
        names = [f"{_short(file)}:{func}" for func, file in frames]
        self_time[names[-1]] += count
        packages[_package(frames[-1][1])] += count
        for name in set(names):
            incl[name] += count
        own = [i for i, (func, file) in enumerate(frames) if any(p in file for p in OWN)]
        # pass-through ASGI middlewares and the entry point wrap every request: not hot spots
        inner = [i for i in own if not frames[i][0].endswith(("__call__", "run_http", "main", "<module>"))]
        for name in {names[i] for i in own}:
            own_incl[name] += count
        if inner:
            i = inner[-1]
            callee = names[i + 1] if i + 1 < len(names) else "(self)"
            border[f"{names[i]} -> {callee}"] += count
        else:
            border["(outside gatehouse code: server, event loop, libraries)"] += count

    def pct(c: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(n)] if total else []

    return {
        "samples": total,
        "packages": pct(packages, 12),
        "self": pct(self_time, top),
        "own_inclusive": pct(own_incl, top + 5),
        "border": pct(border, top + 5),
        "inclusive": pct(incl, 40),
    }


def print_profile(title: str, summary: dict[str, Any]) -> None:
    print(f"\n--- profile: {title} ({summary.get('samples', 0)} samples with the GIL held) ---")
    if not summary.get("samples"):
        print("  (no samples)")
        return
    for key, heading in (
        ("packages", "self time by package"),
        ("self", "self time by function"),
        ("own_inclusive", "inclusive time of our functions"),
        ("border", "our innermost frame -> what it called"),
    ):
        print(f"  {heading}:")
        for name, p in summary[key]:
            print(f"    {p:5.1f}%  {name}")
