# ruff: noqa: S101, S311  (a benchmark: asserts on its own data, seeded randomness for the scaling)
"""`make eval`: quality and speed of the gateway's tool search (gatehouse_gateway/search.py).

Quality, on the evaluation set in bench/search_eval/:
  catalog.txt           tools of realistic MCP targets, as their servers name and describe them
  queries.txt           natural-language queries, each with the tools a person would accept
  queries_holdout.txt   more such queries, kept out of tuning
recall@5 = share of queries with an accepted tool among the first 5 results; MRR = mean of
1 / rank of the first accepted tool (0 when none is in the first 10). Both are printed for the
default options and for each ranking choice switched off or changed (the ablation table of
BENCHMARKS.md, "Tool search").

Speed, in-process, at 10,000 tools: the catalog scaled to 10,000 tools the way a large company's
gateway grows (several instances of the same kinds of server, one per team or region, each target
name different: github-payments, jira-emea, ...); p50/p99 of search(query, limit) over every query,
repeated; index build time from nothing, and the rebuild after one target's tools changed (what
the gateway does on every catalog change).

Usage: python bench/search_eval.py [--rounds 20] [--limit 10] [--tools 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import msgspec

from gatehouse_gateway.search import SEPARATOR, Options, SearchIndex

DATA = Path(__file__).parent / "search_eval"
TYPES = {"string", "number", "integer", "boolean", "object", "array"}


def load_catalog(path: Path = DATA / "catalog.txt") -> list[tuple[str, dict[str, Any]]]:
    """(prefixed name, MCP tool definition as tools/list gives it) for every tool of catalog.txt."""
    tools: list[tuple[str, dict[str, Any]]] = []
    target = ""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            target = line[1:].strip()
            continue
        name, description, params = (part.strip() for part in (line + " |").split("|")[:3])
        assert target and name and description, f"catalog.txt:{number}: {raw!r}"
        properties: dict[str, Any] = {}
        required: list[str] = []
        for param in filter(None, (p.strip() for p in params.split(";"))):
            head, _, text = param.partition(": ")
            pname, _, ptype = head.partition(":")
            if pname.endswith("*"):
                pname = pname[:-1]
                required.append(pname)
            ptype = ptype or "string"
            assert ptype in TYPES and text, f"catalog.txt:{number}: parameter {param!r}"
            spec: dict[str, Any] = {"type": ptype, "description": text}
            if ptype == "array":
                spec["items"] = {"type": "string"}
            properties[pname] = spec
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        prefixed = f"{target}{SEPARATOR}{name}"
        tools.append((prefixed, {"name": prefixed, "description": description, "inputSchema": schema}))
    names = [name for name, _ in tools]
    assert len(set(names)) == len(names), "a tool appears twice in catalog.txt"
    return tools


def load_queries(path: Path, known: set[str]) -> list[tuple[str, set[str]]]:
    queries = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        query, _, accepted = raw.rpartition("|")
        expected = {name.strip() for name in accepted.split(",") if name.strip()}
        unknown = expected - known
        assert query.strip() and expected and not unknown, f"{path.name}:{number}: unknown {unknown}"
        queries.append((query.strip(), expected))
    return queries


def quality(index: SearchIndex, queries: list[tuple[str, set[str]]]) -> tuple[float, float, list[str]]:
    """(recall@5, MRR@10, the queries missed at 5)."""
    hits, reciprocal, missed = 0, 0.0, []
    for query, expected in queries:
        found = index.search(query, 10)
        rank = next((i for i, name in enumerate(found, 1) if name in expected), 0)
        hits += 0 < rank <= 5
        reciprocal += 1 / rank if rank else 0.0
        if not 0 < rank <= 5:
            missed.append(f"{query!r}: rank {rank or '>10'}, got {found[:3]}")
    return hits / len(queries), reciprocal / len(queries), missed


# Ranking choices, each measured against the defaults (one change at a time).
CHOICES: list[tuple[str, dict[str, Any]]] = [
    ("all defaults (BM25F, snowball, stop words, synonyms, coordination 0.5)", {}),
    ("no coordination (a plain sum over the query's words)", {"coordination": 0.0}),
    ("coordination 1.0 (score x share of words matched)", {"coordination": 1.0}),
    ("no synonyms", {"synonyms": False}),
    ("no stemming", {"stemmer": "none"}),
    ("no stop words", {"stop_words": False}),
    ("no field weights (all 1.0)", {"weights": (1.0, 1.0, 1.0, 1.0)}),
    ("no target field (weight 0)", {"weights": (3.0, 0.0, 1.0, 0.4)}),
    ("no parameter field (weight 0)", {"weights": (3.0, 2.0, 1.0, 0.0)}),
    ("synonyms count as typed words", {"synonym_weight": 1.0}),
    ("a word and its synonyms: only the best counts (not all add up)", {"synonym_mode": "max"}),
    (
        "plain BM25: no stemming, stop words, synonyms, weights, coordination or cap on copies",
        {
            "coordination": 0.0,
            "copies": 0,
            "stemmer": "none",
            "stop_words": False,
            "synonyms": False,
            "weights": (1.0, 1.0, 1.0, 1.0),
        },
    ),
]

SCALED_CHOICES: list[tuple[str, dict[str, Any]]] = [
    ("defaults: at most 2 tools of one name while others match", {}),
    ("at most 1 tool of one name", {"copies": 1}),
    ("no cap: copies of one tool may fill the answer", {"copies": 0}),
]

TEAMS = (
    "payments mobile platform data growth emea apac us legal support infra security sales marketing"
    " finance hr research ops"
).split()


def scale(catalog: list[tuple[str, dict[str, Any]]], size: int) -> list[tuple[str, bytes]]:
    """``size`` tools: the catalog's targets repeated under team names (github-payments, ...),
    each copy's descriptions lightly varied as different deployments of a server are."""
    by_target: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, tool in catalog:
        by_target.setdefault(name.split(SEPARATOR)[0], []).append((name, tool))
    rng = random.Random(16)
    out: list[tuple[str, bytes]] = []
    copy = 0
    while len(out) < size:
        team = TEAMS[copy % len(TEAMS)] + ("" if copy < len(TEAMS) else str(copy // len(TEAMS)))
        for target, tools in by_target.items():
            for name, tool in tools:
                own = name.split(SEPARATOR, 1)[1]
                prefixed = f"{target}-{team}{SEPARATOR}{own}"
                varied = dict(tool, name=prefixed)
                if rng.random() < 0.3:
                    varied["description"] = (
                        f"{tool['description']} ({team} {rng.choice(['prod', 'staging', 'eu', 'us'])})"
                    )
                out.append((prefixed, msgspec.json.encode(varied)))
                if len(out) == size:
                    return out
        copy += 1
    return out


def original(copy: str) -> str:
    """The catalog's name of a scaled copy: github-payments___create_issue -> github___create_issue."""
    target, _, tool = copy.partition(SEPARATOR)
    return f"{target.rsplit('-', 1)[0]}{SEPARATOR}{tool}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed(function: Any, *args: Any, cpu: list[float] | None = None) -> tuple[float, Any]:
    """Wall milliseconds of a call (and its CPU milliseconds appended to ``cpu``)."""
    start, start_cpu = time.perf_counter(), time.thread_time()
    result = function(*args)
    if cpu is not None:
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return (time.perf_counter() - start) * 1000, result


def speed(
    catalog: list[tuple[str, dict[str, Any]]], queries: list[str], size: int, rounds: int, limit: int
) -> dict[str, float]:
    tools = scale(catalog, size)
    cold_cpu: list[float] = []
    cold = [timed(SearchIndex.build, tools, cpu=cold_cpu)[0] for _ in range(3)]
    index = SearchIndex.build(tools)
    # one target (the first copy of github, 26 tools) changes: its descriptions get a suffix
    changed_target = tools[0][0].split(SEPARATOR)[0]
    changed = [
        (
            name,
            data.replace(b'"description":"', b'"description":"(v2) ')
            if name.startswith(changed_target + SEPARATOR)
            else data,
        )
        for name, data in tools
    ]
    warm, warm_cpu = [], []
    for i in range(10):
        elapsed, index = timed(SearchIndex.build, changed if i % 2 == 0 else tools, index, cpu=warm_cpu)
        warm.append(elapsed)
    unchanged_cpu: list[float] = []
    unchanged = [timed(SearchIndex.build, tools, index, cpu=unchanged_cpu)[0] for _ in range(5)]
    inline_lag, thread_lag = asyncio.run(loop_lag(tools, changed, index))
    gc.collect()
    gc.freeze()
    latencies, cpu = [], []
    for _ in range(rounds):
        for query in queries:
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            index.search(query, limit)
            cpu.append((time.thread_time_ns() - start_cpu) / 1e6)
            latencies.append((time.perf_counter_ns() - start) / 1e6)
    return {
        "tools": len(tools),
        "searches": len(latencies),
        "search_p50_ms": percentile(latencies, 50),
        "search_p99_ms": percentile(latencies, 99),
        "search_max_ms": max(latencies),
        "search_cpu_p50_ms": percentile(cpu, 50),
        "search_cpu_p99_ms": percentile(cpu, 99),
        "build_cold_ms": statistics.median(cold),
        "build_cold_cpu_ms": statistics.median(cold_cpu),
        "rebuild_one_target_changed_ms": statistics.median(warm),
        "rebuild_one_target_changed_cpu_ms": statistics.median(warm_cpu),
        "rebuild_one_target_changed_max_ms": max(warm),
        "rebuild_nothing_changed_ms": statistics.median(unchanged),
        "rebuild_nothing_changed_cpu_ms": statistics.median(unchanged_cpu),
        "loop_stall_rebuild_inline_max_ms": inline_lag,
        "loop_stall_rebuild_in_thread_max_ms": thread_lag,
    }


async def loop_lag(
    tools: list[tuple[str, bytes]], changed: list[tuple[str, bytes]], index: SearchIndex
) -> tuple[float, float]:
    """The longest the event loop waits for its turn while the index is rebuilt 10 times after a
    target changed: on the loop itself, then in a worker thread (asyncio.to_thread)."""
    lags: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - start) * 1000 - 1)

    results = []
    for in_thread in (False, True):
        lags.clear()
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        await asyncio.sleep(0.01)
        for i in range(10):
            catalog = changed if i % 2 == 0 else tools
            if in_thread:
                index = await asyncio.to_thread(SearchIndex.build, catalog, index)
            else:
                index = SearchIndex.build(catalog, index)
                await asyncio.sleep(0)
        stop.set()
        await task
        results.append(max(lags))
    return results[0], results[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20, help="times each query is timed at scale")
    parser.add_argument("--limit", type=int, default=10, help="results per search when timing")
    parser.add_argument("--tools", type=int, default=10_000, help="catalog size when timing")
    parser.add_argument("--misses", action="store_true", help="print the queries missed at 5")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    catalog = load_catalog()
    known = {name for name, _ in catalog}
    dev = load_queries(DATA / "queries.txt", known)
    holdout = load_queries(DATA / "queries_holdout.txt", known)
    targets = {name.split(SEPARATOR)[0] for name in known}
    print(
        f"catalog: {len(catalog)} tools from {len(targets)} targets; "
        f"queries: {len(dev)} (tuning) + {len(holdout)} (held out)"
    )

    results: dict[str, Any] = {"catalog_tools": len(catalog), "targets": len(targets), "choices": []}
    print("\n| choice | recall@5 | MRR | held-out recall@5 | held-out MRR |\n|---|---|---|---|---|")
    for label, change in CHOICES:
        index = SearchIndex.build(catalog, options=dataclasses.replace(Options(), **change))
        r, m, missed = quality(index, dev)
        hr, hm, held_missed = quality(index, holdout)
        print(f"| {label} | {r:.3f} | {m:.3f} | {hr:.3f} | {hm:.3f} |")
        results["choices"].append(
            {"choice": label, "recall@5": r, "mrr": m, "holdout_recall@5": hr, "holdout_mrr": hm}
        )
        if not change:
            first = sum(index.search(q, 1) and index.search(q, 1)[0] in e for q, e in dev + holdout)
            results["first_hit_share"] = first / len(dev + holdout)
        if not change and args.misses:
            print("\n".join(f"  missed: {line}" for line in missed))  # not the held-out ones

    print(f"\nthe first result is right for {results['first_hit_share']:.3f} of all queries (defaults)")
    print(f"\nat {args.tools} tools (tuning queries; a team's copy of an accepted tool counts):")
    print("| choice | recall@5 | MRR |\n|---|---|---|")
    big = scale(catalog, args.tools)
    results["scaled"] = []
    for label, change in SCALED_CHOICES:
        at_scale = SearchIndex.build(big, options=dataclasses.replace(Options(), **change))
        copies: dict[str, set[str]] = {}
        for name in at_scale.names:
            copies.setdefault(original(name), set()).add(name)
        r, m, _ = quality(at_scale, [(q, set().union(*(copies[e] for e in exp))) for q, exp in dev])
        results["scaled"].append({"choice": label, "recall@5": r, "mrr": m})
        print(f"| {label} | {r:.3f} | {m:.3f} |")
    figures = speed(catalog, [q for q, _ in dev + holdout], args.tools, args.rounds, args.limit)
    results["speed"] = figures
    load = os.getloadavg()[0]
    results["load_average_1m"] = load
    print(
        f"\nin-process at {figures['tools']} tools, limit {args.limit}, {figures['searches']} searches "
        f"(load average {load:.1f} on {os.cpu_count()} CPUs; *_cpu_* = this thread's CPU time):"
    )
    for key, value in figures.items():
        if key not in ("tools", "searches"):
            print(f"  {key:36} {value:8.3f}")
    default = results["choices"][0]
    verdicts = [
        ("recall@5 >= 0.9 (tuning queries)", default["recall@5"] >= 0.9),
        (f"p99 <= 5 ms at {args.tools} tools, CPU time of a search", figures["search_cpu_p99_ms"] <= 5.0),
        (f"p99 <= 5 ms at {args.tools} tools, wall clock (load {load:.1f})", figures["search_p99_ms"] <= 5.0),
    ]
    for target, ok in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {target}")
    if args.json:
        args.json.write_text(msgspec.json.format(msgspec.json.encode(results)).decode())


if __name__ == "__main__":
    main()
