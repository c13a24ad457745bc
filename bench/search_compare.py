# ruff: noqa: S101
"""The libraries the tool search could have used, measured against it (BENCHMARKS.md §7).

Not part of `make eval`: it needs two packages the project does not lock,
    .venv/bin/pip install bm25s rank-bm25 && .venv/bin/python bench/search_compare.py
(uninstall them afterwards). Each candidate ranks the same analyzed words (gatehouse_gateway.search
tokenization); the libraries have no fields, so the fields are weighted by repeating their words
(name x3, target x2, description, parameters). Quality on all queries of bench/search_eval/;
build time and CPU time per search (limit 10) at 10,000 tools.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import bm25s
import msgspec
import numpy as np
import rank_bm25
from search_eval import DATA, load_catalog, load_queries, scale

from gatehouse_gateway.search import Options, SearchIndex, analyzer, field_texts

Search = Callable[[str, int], list[str]]
TEXT = analyzer(Options())


def words_of(name: str, definition: bytes | dict[str, Any]) -> list[str]:
    tool = msgspec.json.decode(definition) if isinstance(definition, bytes) else definition
    name_words, target, description, parameters = (TEXT.tokens(x) for x in field_texts(name, tool))
    return name_words * 3 + target * 2 + description + parameters


def top(names: list[str], scores: Any, limit: int) -> list[str]:
    return [names[i] for i in np.argsort(-scores)[:limit] if scores[i] > 0]


def with_bm25s(entries: list[tuple[str, Any]]) -> Search:
    names = [name for name, _ in entries]
    retriever = bm25s.BM25()
    retriever.index([words_of(n, d) for n, d in entries], show_progress=False)

    def search(query: str, limit: int) -> list[str]:
        known = [w for w in dict.fromkeys(TEXT.tokens(query)) if w in retriever.vocab_dict]
        return top(names, retriever.get_scores(known), limit) if known else []

    return search


def with_rank_bm25(entries: list[tuple[str, Any]]) -> Search:
    names = [name for name, _ in entries]
    okapi = rank_bm25.BM25Okapi([words_of(n, d) for n, d in entries])

    def search(query: str, limit: int) -> list[str]:
        query_words = list(dict.fromkeys(TEXT.tokens(query)))
        return top(names, okapi.get_scores(query_words), limit) if query_words else []

    return search


def with_ours(**options: Any) -> Callable[[list[tuple[str, Any]]], Search]:
    return lambda entries: SearchIndex.build(entries, options=Options(**options)).search


def main() -> None:
    catalog = load_catalog()
    known = {name for name, _ in catalog}
    queries = load_queries(DATA / "queries.txt", known) + load_queries(DATA / "queries_holdout.txt", known)
    big = scale(catalog, 10_000)
    print("| ranking | recall@5 | MRR | build at 10,000 tools (ms) | search CPU p50 (ms) | p99 (ms) |")
    print("|---|---|---|---|---|---|")
    candidates: list[tuple[str, Callable[[list[tuple[str, Any]]], Search]]] = [
        ("search.py, defaults", with_ours()),
        ("search.py, no synonyms, no coordination", with_ours(synonyms=False, coordination=0.0)),
        (f"bm25s {bm25s.__version__}, fields by repetition", with_bm25s),
        ("rank-bm25 BM25Okapi, fields by repetition", with_rank_bm25),
    ]
    for label, make in candidates:
        search = make(catalog)
        hits = reciprocal = 0.0
        for query, expected in queries:
            found = search(query, 10)
            rank = next((i for i, name in enumerate(found, 1) if name in expected), 0)
            hits += 0 < rank <= 5
            reciprocal += 1 / rank if rank else 0.0
        start = time.perf_counter()
        search = make(big)
        build = (time.perf_counter() - start) * 1000
        cpu = []
        for _ in range(3):
            for query, _ in queries:
                t = time.thread_time_ns()
                search(query, 10)
                cpu.append((time.thread_time_ns() - t) / 1e6)
        cpu.sort()
        p50, p99 = cpu[len(cpu) // 2], cpu[int(len(cpu) * 0.99)]
        quality = f"{hits / len(queries):.3f} | {reciprocal / len(queries):.3f}"
        print(f"| {label} | {quality} | {build:.0f} | {p50:.3f} | {p99:.3f} |")


if __name__ == "__main__":
    main()
