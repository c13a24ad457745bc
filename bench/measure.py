# ruff: noqa: S101, S603, S607  (a benchmark harness: asserts, starts wrk)
"""Measuring for ``bench/run.py``: the machine's facts, CPU and memory accounting from /proc, and wrk
runs (``Wrk``), one case at a time or as an A B B A pair against a reference."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness  # tests/harness, on the path bench/run.py sets

LUA = Path(__file__).resolve().parent / "mcp.lua"
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


# ------------------------------------------------------------------------------------------
# machine, processes, CPU accounting
# ------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version[0] if wrk_version else "?",
    }


TICK = os.sysconf("SC_CLK_TCK")
# "idle again" after a load: a half-second in which the stack's processes used < 0.05 cores together
# (their idle rate is ~0.01: timers, heartbeats; the clock ticks in 10 ms steps)
IDLE_WINDOW = 0.5
IDLE_CORES = 0.05


def family(pid: int | None) -> list[int]:
    """``pid`` and its descendants (uvicorn's worker processes when GATEWAY_WORKERS > 1)."""
    if not pid:
        return []
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        out.append(p := todo.pop())
        todo += parents.get(p, [])
    return out


def cpu_seconds(pid: int | None) -> float:
    """CPU time used so far by ``pid`` and its descendants."""
    total = 0.0
    for member in family(pid):
        try:
            with open(f"/proc/{member}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            total += (int(rest[11]) + int(rest[12])) / TICK
        except (OSError, IndexError, ValueError):
            pass
    return total


def busy_seconds() -> float:
    """CPU time spent by the whole machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def alive(pid: int | None) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def rss_kib(pid: int | None) -> dict[str, int]:
    """VmRSS and VmHWM (peak), summed over ``pid`` and its descendants."""
    out = {"VmRSS": 0, "VmHWM": 0}
    for member in family(pid):
        try:
            with open(f"/proc/{member}/status") as f:
                for line in f:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        out[line.split(":")[0]] += int(line.split()[1])
        except OSError:
            pass
    return out


# ------------------------------------------------------------------------------------------
# wrk
# ------------------------------------------------------------------------------------------


@dataclass
class Run:
    case: str
    conns: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    rps: float
    requests: int
    errors: int
    response_bytes: int
    wrk_cpu: float  # cores used by wrk itself
    cpu: dict[str, float] = field(default_factory=dict)  # cores used by each watched process
    other_cpu: float = 0.0  # cores used by everything else on the machine (other work disturbing us)
    # with ``drain``: CPU ms per request of each watched process over the load and the drain after
    # it, and the drain: seconds from the end of the load until the drained processes were idle
    cpu_ms: dict[str, float] = field(default_factory=dict)
    drain_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds of each watched process, unrounded


def merge(x: Run, y: Run) -> Run:
    """One run's figures from two runs of the same case."""

    def mean(a: float, b: float) -> float:
        return (a + b) / 2

    return Run(
        x.case,
        x.conns,
        *(mean(getattr(x, f), getattr(y, f)) for f in ("p50_ms", "p90_ms", "p99_ms", "p999_ms")),
        max(x.max_ms, y.max_ms),
        mean(x.rps, y.rps),
        x.requests + y.requests,
        x.errors + y.errors,
        x.response_bytes,
        mean(x.wrk_cpu, y.wrk_cpu),
        {k: round(mean(v, y.cpu.get(k, 0.0)), 2) for k, v in x.cpu.items()},
        max(x.other_cpu, y.other_cpu),
        {k: round(mean(v, y.cpu_ms.get(k, 0.0)), 3) for k, v in x.cpu_ms.items()},
        mean(x.drain_s, y.drain_s),
        {k: v + y.cpu_s.get(k, 0.0) for k, v in x.cpu_s.items()},
    )


class Wrk:
    def __init__(self, workdir: Path, duration: float, watch: dict[str, int | None]) -> None:
        self.workdir = workdir
        self.duration = duration
        self.watch = watch  # name -> pid, CPU sampled around each run
        self.runs: list[Run] = []

    def run(
        self,
        case: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        conns: int,
        *,
        duration: float | None = None,
        check: bool = False,
        record: bool = True,
        drain: tuple[str, ...] = (),
    ) -> Run:
        """One wrk run. With ``drain`` (names of watched processes), it then waits until those are
        idle again (``idle``) and charges each process's CPU over the load and the drain to the
        requests (``Run.cpu_ms``)."""
        duration = duration or self.duration
        body_file = self.workdir / "body.json"
        headers_file = self.workdir / "headers.txt"
        body_file.write_bytes(body)
        headers_file.write_text("".join(f"{k}: {v}\n" for k, v in headers.items()))
        threads = 1 if conns == 1 else min(2, os.cpu_count() or 2)
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{conns}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
        ]
        env = {
            **os.environ,
            "BENCH_BODY_FILE": str(body_file),
            "BENCH_HEADERS_FILE": str(headers_file),
            "BENCH_CHECK": "1" if check else "0",
        }
        before = {name: cpu_seconds(pid) for name, pid in self.watch.items()}
        machine_before = busy_seconds()
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        assert proc.stdout is not None
        out = proc.stdout.read().decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        cpu = {name: round((cpu_seconds(pid) - before[name]) / wall, 2) for name, pid in self.watch.items()}
        machine = (busy_seconds() - machine_before) / wall
        drain_s = self.idle(drain) if drain else 0.0
        used = {name: cpu_seconds(pid) - before[name] for name, pid in self.watch.items()}
        dead = [f"{name} (pid {pid})" for name, pid in self.watch.items() if pid and not alive(pid)]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} died during {case}; see the logs in {harness.log_dir()}")
        m = re.search(r"^BENCHJSON (\{.*\})$", out, re.M)
        if proc.returncode != 0 or m is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}) for {case}: {out[-2000:]}")
        r = json.loads(m.group(1))
        errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"] + r["rpc_errors"]
        seconds = r["duration_us"] / 1e6
        run = Run(
            case=case,
            conns=conns,
            p50_ms=r["p50"] / 1000,
            p90_ms=r["p90"] / 1000,
            p99_ms=r["p99"] / 1000,
            p999_ms=r["p999"] / 1000,
            max_ms=r["max"] / 1000,
            rps=r["requests"] / seconds if seconds else 0.0,
            requests=r["requests"],
            errors=errors,
            response_bytes=r["bytes"] // max(1, r["requests"]),
            wrk_cpu=round((usage.ru_utime + usage.ru_stime) / wall, 2),
            cpu=cpu,
            drain_s=drain_s,
            cpu_s=used,
        )
        if drain:
            run.cpu_ms = {name: round(1000 * s / max(1, run.requests), 3) for name, s in used.items()}
        run.other_cpu = round(max(0.0, machine - run.wrk_cpu - sum(cpu.values())), 2)
        if record:
            self.keep(run)
        return run

    def idle(self, names: tuple[str, ...], limit: float = 120.0) -> float:
        """Seconds until the named processes are idle again: the start of the first ``IDLE_WINDOW`` in
        which they used less than ``IDLE_CORES`` together (``limit`` if never)."""
        pids = [self.watch[name] for name in names]
        start = last = time.monotonic()
        spent = sum(map(cpu_seconds, pids))
        while last - start < limit:
            time.sleep(IDLE_WINDOW)
            now, total = time.monotonic(), sum(map(cpu_seconds, pids))
            if (total - spent) / (now - last) < IDLE_CORES:
                return round(last - start, 2)
            last, spent = now, total
        return limit

    def keep(self, run: Run) -> None:
        self.runs.append(run)
        flag = f"  ERRORS {run.errors}" if run.errors else ""
        if run.cpu_ms:
            flag += f"  drain {run.drain_s:.1f}s"
        say(
            f"  {run.case:<24} c{run.conns:<3} p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms  "
            f"{run.rps:9.0f} rps  wrk {run.wrk_cpu:.2f} cores  other {run.other_cpu:.2f} cores{flag}"
        )

    def pair(
        self,
        ref: tuple[str, str, bytes, dict[str, str]],
        sub: tuple[str, str, bytes, dict[str, str]],
        conns: int,
        *,
        check: bool = False,
        duration: float | None = None,
        drain: tuple[str, ...] = (),
    ) -> tuple[Run, Run]:
        """A reference and a subject measured in the order A B B A, each run ``duration`` long, so a
        drift of the machine's load during the pair weighs on both alike; each side's numbers are
        the mean of its two runs (rps, CPU) and the mean of their percentiles."""
        how: dict[str, Any] = {"check": check, "record": False, "duration": duration, "drain": drain}
        a1 = self.run(*ref, conns, **how)
        b1 = self.run(*sub, conns, **how)
        b2 = self.run(*sub, conns, **how)
        a2 = self.run(*ref, conns, **how)
        ref_run, sub_run = merge(a1, a2), merge(b1, b2)
        self.keep(ref_run)
        self.keep(sub_run)
        return ref_run, sub_run
