"""The search tool of a gateway with ``protocolConfiguration.mcp.searchType: "SEMANTIC"``: AgentCore's
``x_amz_bedrock_agentcore_search`` contract over ``search.SearchIndex`` (docs/search.md).

``tools/list`` carries the tool's definition (``DEFINITION``, one more entry of the catalog's cached
pages); a ``tools/call`` of it answers the best-matching tools of the gateway, each as ``tools/list``
gives it (the catalog's own encoded bytes, held by the index), in ``structuredContent.tools`` and as
the same JSON in ``content[0].text``. The index follows the catalog: ``Catalog`` rebuilds it in a
worker thread after each change of a searchable gateway, from the previous one.

With an operator's embedding service (``GATEWAY_SEARCH_EMBEDDINGS_URL``), ``Semantic`` adds a vector
ranking: the tools of a rebuilt index that have no embedding yet are embedded in the background (the
index is searched lexically until they are), and each query is embedded with a short timeout. A slow
or failing service never fails a search: it ranks lexically (docs/search.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import msgspec

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.jsonrpc import JsonRpcError

from .search import MAX_QUERY_CHARS, Embedder, Key, SearchIndex, embedding_text

log = logging.getLogger("gatehouse.gateway")

QUERY_REST_SECONDS = 5.0

NAME = "x_amz_bedrock_agentcore_search"
MAX_RESULTS = 10  # tools per answer: enough to choose from, few enough to read
SEARCH_ONLY = (
    "SEARCH_ONLY"  # protocolConfiguration.mcp.toolListMode: tools/list lists the search tool (+ pinned)
)

DEFINITION = msgspec.json.encode(
    {
        "name": NAME,
        "title": "Search this gateway's tools",
        "description": (
            "Find the tools of this gateway that fit a task. Give a short natural-language request "
            '("create a Jira ticket", "list open pull requests in the payments repo"); the answer lists '
            f"at most {MAX_RESULTS} tools, most relevant first, each with its full definition "
            "(name, description, inputSchema), ready to call with tools/call. Ranking is by the words "
            "of the tools' names, descriptions and parameters (with common synonyms), not by meaning: "
            "name the product or the object if the first answer misses."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": f"What the tool is for, in a few words (at most {MAX_QUERY_CHARS} chars)",
                }
            },
            "required": ["query"],
        },
    }
)
KEY = ("", 0)  # its place in the tools/list order: before every target's tools (target names are not empty)


class Searchable:
    """A search index and each tool's encoded definition by prefixed name, built together."""

    __slots__ = ("definitions", "index", "vectors")

    def __init__(self, index: SearchIndex, vectors: dict[Key, Sequence[float]] | None = None) -> None:
        self.index = index
        self.definitions = dict(index.keys)
        self.vectors = vectors or {}  # the embeddings the index holds, by tool (``Semantic``)

    @property
    def embedded(self) -> bool:
        return bool(self.vectors)

    def with_vectors(self, vectors: dict[Key, Sequence[float]]) -> Searchable:
        return Searchable(self.index.with_vectors(vectors), vectors)


def build(entries: Iterable[tuple[str, bytes]], previous: Searchable | None) -> Searchable:
    """The index of a catalog's listed tools (prefixed name, encoded definition), reusing what
    ``previous`` analyzed of unchanged targets. Slow at 10,000s of tools: run it in a worker thread."""
    unique = dict(entries)  # a name twice (a target that lists a tool twice): the last one, as routing has it
    return Searchable(SearchIndex.build(unique.items(), previous.index if previous is not None else None))


async def call(searchable: Searchable | None, arguments: Any, semantic: Semantic | None = None) -> bytes:
    """The encoded tools/call result of the search tool for ``arguments``. Invalid arguments are a
    tool execution error (``isError``), as MCP 2025-11-25 (SEP-1303) says for input validation errors: the
    model reads the message and can correct its call."""
    if not isinstance(arguments, dict):  # the call's shape, as for any tool: a protocol error
        raise JsonRpcError(jsonrpc.INVALID_PARAMS, "Invalid params: arguments must be an object")
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return _error('the search tool needs {"query": "<what the tool should do>"}: a non-empty string')
    if len(query) > MAX_QUERY_CHARS:
        return _error(f"the query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
    found: list[bytes] = []
    if searchable is not None:  # None only while a gateway's first index is being built
        vector = await semantic.query(query) if semantic is not None and searchable.embedded else None
        names = searchable.index.search(query, MAX_RESULTS, query_vector=vector)
        found = [searchable.definitions[name] for name in names]
    tools = b'{"tools":[' + b",".join(found) + b"]}"
    text = msgspec.json.encode(tools.decode())
    return b'{"content":[{"type":"text","text":' + text + b'}],"structuredContent":' + tools + b"}"


class Semantic:
    """An operator's embedding service behind the search tool. Each gateway's tool embeddings are
    kept by tool (name and definition), so a rebuild embeds only the tools that changed."""

    def __init__(self, embedder: Embedder, timeout: float, retry_seconds: float = 30.0) -> None:
        self._embedder = embedder
        self._timeout = timeout
        self._retry = retry_seconds
        self._vectors: dict[str, dict[Key, Sequence[float]]] = {}  # by gateway: its tools' embeddings
        self._healthy = True  # for logging a failure once, and the recovery
        self._rest_until = 0.0  # after a failed query, searches skip the service until then

    def attach(self, gateway_id: str, searchable: Searchable) -> Searchable:
        """``searchable`` with the embeddings already known of its tools."""
        known = self._vectors.get(gateway_id, {})
        vectors = {key: known[key] for key in searchable.index.keys if key in known}
        return searchable.with_vectors(vectors) if vectors else searchable

    def missing(self, searchable: Searchable) -> bool:
        return len(searchable.vectors) < len(searchable.index.keys)

    async def fill(self, gateway_id: str, searchable: Searchable) -> Searchable:
        """``searchable`` with an embedding for every tool; raises what the service raised."""
        known = self._vectors.get(gateway_id, {})
        keys = [key for key in searchable.index.keys if key not in known]
        texts = [embedding_text(name, definition) for name, definition in keys]
        vectors = await self._embedder.embed(texts) if texts else []
        if len(vectors) != len(keys):
            raise ValueError(f"the embedding service gave {len(vectors)} vectors for {len(keys)} texts")
        fresh = {key: known[key] for key in searchable.index.keys if key in known}
        fresh.update(zip(keys, vectors, strict=True))
        self._vectors[gateway_id] = fresh  # only this index's tools: the cache follows the catalog
        return searchable.with_vectors(fresh) if fresh else searchable

    def forget(self, gateway_id: str) -> None:
        self._vectors.pop(gateway_id, None)

    async def query(self, query: str) -> Sequence[float] | None:
        """The query's embedding, or None (lexical ranking only) when the service does not give one
        within the timeout. After a failure the service is left alone for ``QUERY_REST_SECONDS``: a
        service that hangs costs one search the timeout, not every search."""
        if time.monotonic() < self._rest_until:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                vectors = await self._embedder.embed([query])
        except Exception as exc:  # noqa: BLE001 - any failure of the service: rank lexically
            self.failed("a query", exc)
            self._rest_until = time.monotonic() + QUERY_REST_SECONDS
            return None
        self.recovered()
        return vectors[0] if len(vectors) == 1 else None

    def failed(self, what: str, exc: BaseException) -> None:
        if self._healthy:
            log.warning(
                "the embedding service failed on %s (%s); tool search ranks by words until it answers",
                what,
                type(exc).__name__,
            )
        self._healthy = False

    def recovered(self) -> None:
        if not self._healthy:
            log.info("the embedding service answers again; tool search ranks by words and meaning")
        self._healthy = True

    async def keep_filled(self, gateway_id: str, live_catalog: Callable[[str], Awaitable[Any]]) -> None:
        """Embed the tools of the index of the gateway's live catalog (``live_catalog``) and swap the
        result in while that index is still the catalog's; go on with a newer one; after a failure,
        try again every ``retry_seconds``. Ends when every tool has its embedding or the gateway is
        gone."""
        while (live := await live_catalog(gateway_id)) is not None and (
            searchable := live.search
        ) is not None:
            if not self.missing(searchable):
                return
            try:
                filled = await self.fill(gateway_id, searchable)
            except Exception as exc:  # noqa: BLE001 - the service's failure: retried, never raised
                self.failed(f"the tools of gateway {gateway_id}", exc)
                await asyncio.sleep(self._retry)
                continue
            self.recovered()
            if live.search is searchable:  # not replaced by a newer index meanwhile
                live.search = filled
        self.forget(gateway_id)


def _error(message: str) -> bytes:
    return msgspec.json.encode(
        {"content": [{"type": "text", "text": f"Invalid arguments: {message}"}], "isError": True}
    )
