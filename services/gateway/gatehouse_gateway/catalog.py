"""The in-memory catalog of every gateway: tools of READY targets, prefixed, paged, ready to serve.

Each replica keeps its own; it is rebuilt for one gateway whenever a catalog-change event arrives,
and wholly re-read from MongoDB on a timer and after a reconnect, so a missed event heals itself.
tools/list never leaves memory.

A tools/list cursor names the last tool of the page before (target name, index), so paging survives
catalog changes between pages, and is signed (``Cursors``): the gateway serves only cursors it
issued, and keeps encoded only the pages the current catalog issues (at most one per page).
"""

from __future__ import annotations

import asyncio
import binascii
import bisect
import gc
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gatehouse_contracts.lifecycle import READY, Target
from gatehouse_contracts.mcp_client import HeaderMap, is_modern
from gatehouse_contracts.target_auth import oauth_provider
from gatehouse_contracts.tools import InvalidTool, header_map

from . import tool_search
from .sessions import b64, sign, unb64
from .store import Doc, Store
from .waiters import Waiters

log = logging.getLogger("gatehouse.gateway.catalog")
SEPARATOR = "___"
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class RoutedTarget:
    """Where a prefixed tool goes."""

    target_id: str
    name: str
    endpoint: str
    generation: int
    gateway_id: str = ""
    oauth: dict[str, Any] | None = None  # the target's oauthCredentialProvider, if it has one
    protocol_version: str | None = None  # the MCP version it spoke at its last sync (its era)
    # 2026-07-28: the x-mcp-header annotations of its tools that have any, by the tool's own name
    header_maps: dict[str, HeaderMap] = field(default_factory=dict, compare=False, hash=False)

    @property
    def user_auth(self) -> bool:
        """The target acts on each user's behalf (authorization code), not as the gateway."""
        return bool(self.oauth and self.oauth.get("grantType") == "AUTHORIZATION_CODE")


# a target as read, where its tools go, and each tool: (prefixed name, own name, JSON)
Encoded = tuple[Target, RoutedTarget, list[tuple[str, str, bytes]]]


@dataclass
class GatewayCatalog:
    """One gateway's configuration and tools, with each page of tools/list encoded once.

    Each target's tools are decoded, prefixed and encoded once per stored version of the target
    (``_encoded``, kept while ``targets`` holds the same read of it), so a change to one target of a
    1,000-target gateway does not re-encode the other 999 on the event loop (BENCHMARKS.md §6)."""

    gateway: Doc
    targets: dict[str, Target] = field(default_factory=dict)
    keys: list[tuple[str, int]] = field(default_factory=list)
    tools: list[bytes] = field(default_factory=list)  # each prefixed tool, encoded
    routes: dict[str, tuple[RoutedTarget, str]] = field(default_factory=dict)
    return_urls: frozenset[str] = frozenset()  # the workload's allow-list: targets' defaultReturnUrls
    _answers: dict[int, bytes] = field(default_factory=dict)  # by first tool: the issued pages only
    _starts: dict[str, int] = field(default_factory=dict)  # the cursors of _answers: where they lead
    _encoded: dict[str, Encoded] = field(default_factory=dict)
    _modern: dict[str | None, bytes] = field(default_factory=dict)  # 2026-07-28 pages, by cursor
    searchable: bool = False  # protocolConfiguration.mcp.searchType: the search tool is listed and called
    search: tool_search.Searchable | None = None  # its index: Catalog builds it after ``rebuild``

    def copy(self, gateway: Doc) -> GatewayCatalog:
        """This catalog's targets (and their encoded tools) under a changed gateway document."""
        return GatewayCatalog(gateway, dict(self.targets), _encoded=dict(self._encoded), search=self.search)

    def rebuild(self) -> None:
        keys: list[tuple[str, int]] = []
        tools: list[bytes] = []
        routes: dict[str, tuple[RoutedTarget, str]] = {}
        encoded: dict[str, Encoded] = {}
        for stored in sorted(self.targets.values(), key=lambda t: t.name):
            if stored.status.status != READY:
                continue
            held = self._encoded.get(stored.id)
            if held is None or held[0] is not stored:
                held = _encode_target(stored)
            encoded[stored.id] = held
            _, target, entries = held
            for i, (name, tool, data) in enumerate(entries):
                keys.append((stored.name, i))
                tools.append(data)
                routes[name] = (target, tool)
        mcp = self.gateway.get("protocolConfiguration", {}).get("mcp", {})
        self.searchable = "searchType" in mcp
        if self.searchable:
            keys, tools = _listed(mcp, encoded, keys, tools)
        self.keys, self.tools, self.routes, self._encoded = keys, tools, routes, encoded
        self._answers, self._starts, self._modern = {}, {}, {}
        self.return_urls = frozenset(url for t in self.targets.values() if (url := t.spec.default_return_url))
        # The catalog lives long and holds no reference cycles (refcounting frees a replaced one):
        # keep its objects out of the cyclic collector, whose full passes over 10,000s of tool
        # dicts stalled every request (BENCHMARKS.md §6).
        gc.freeze()

    def answer(self, cursor: str | None, size: int, cursors: Cursors) -> bytes:
        """The tools/list answer for one page, all but its id, encoded once per page:
        ``{"jsonrpc":"2.0","result":{"tools":[...],"nextCursor":"..."},"id":`` (the caller adds
        ``<id>}``; the id comes last so the cached bytes need no copy). ValueError for a cursor
        this gateway did not issue."""
        start = 0 if cursor is None else self._starts.get(cursor, -1)
        if start < 0:  # not a cursor of a page kept here: check that a replica issued it
            start = bisect.bisect_right(self.keys, cursors.parse(self.gateway["_id"], cursor or ""))
        answer = self._answers.get(start)
        if answer is None:
            end = min(start + size, len(self.tools))
            more = next_cursor = b""
            if end < len(self.tools):
                next_cursor = cursors.make(self.gateway["_id"], self.keys[end - 1]).encode()
                more = b',"nextCursor":"' + next_cursor + b'"'
            tools = b",".join(self.tools[start:end])
            answer = b'{"jsonrpc":"2.0","result":{"tools":[' + tools + b"]" + more + b'},"id":'
            # this catalog's own cursors start pages at multiples of size; a cursor issued before a
            # change may start elsewhere: served, not kept, so the cache is one entry per page
            if start % size == 0:
                self._answers[start] = answer
                if next_cursor:
                    self._starts[next_cursor.decode()] = end
        return answer

    def modern_answer(
        self, cursor: str | None, size: int, cursors: Cursors, head: Callable[[GatewayCatalog], bytes]
    ) -> bytes:
        """``answer``'s page for protocol 2026-07-28: ``head(self)`` (resultType, cache hints, _meta)
        goes first in the result. Encoded once per page, like ``answer``'s, and only for the pages
        ``answer`` keeps."""
        modern = self._modern.get(cursor)
        if modern is None:
            page = self.answer(cursor, size, cursors)
            modern = _RESULT + head(self) + b"," + page[len(_RESULT) :]
            if cursor is None or cursor in self._starts:
                self._modern[cursor] = modern
        return modern

    def search_entries(self) -> list[tuple[str, bytes]]:
        """Every routed tool (prefixed name, encoded as tools/list gives it): what search finds."""
        return [(name, data) for _, _, entries in self._encoded.values() for name, _, data in entries]


_RESULT = b'{"jsonrpc":"2.0","result":{'


def _listed(
    mcp: Doc, encoded: dict[str, Encoded], keys: list[tuple[str, int]], tools: list[bytes]
) -> tuple[list[tuple[str, int]], list[bytes]]:
    """What tools/list lists of a searchable gateway: the search tool first, then every tool, or
    only the operator's ``pinnedTools`` (``toolListMode: SEARCH_ONLY``); tools/call routes them all."""
    if mcp.get("toolListMode") != tool_search.SEARCH_ONLY:
        return [tool_search.KEY, *keys], [tool_search.DEFINITION, *tools]
    pinned = set(mcp.get("pinnedTools", ()))
    keys, tools = [tool_search.KEY], [tool_search.DEFINITION]
    for stored, _, entries in encoded.values():
        for i, (name, _, data) in enumerate(entries):
            if name in pinned:
                keys.append((stored.name, i))
                tools.append(data)
    return keys, tools


def _encode_target(stored: Target) -> Encoded:
    """Where a READY target's tools go, and each tool under its prefixed name, encoded."""
    version = stored.status.protocol_version
    tools_json = stored.tools_json or b"[]"
    annotated = b"x-mcp-header" in tools_json
    header_maps: dict[str, HeaderMap] = {}  # what a 2026-07-28 call mirrors, to the target or from a client
    entries = []
    for tool in msgspec.json.decode(tools_json):
        name, prefixed = tool["name"], f"{stored.name}{SEPARATOR}{tool['name']}"
        if annotated:
            try:
                if found := header_map(tool):
                    header_maps[name] = found
            except InvalidTool:
                # a 2026-07-28 target's sync leaves such tools out (so does a catalog it did not
                # write); a handshake-era target's keeps them: 2026-07-28 clients drop them themselves
                if is_modern(version):
                    continue
        tool["name"] = prefixed
        entries.append((prefixed, name, _encoder.encode(tool)))
    target = RoutedTarget(
        stored.id,
        stored.name,
        stored.spec.endpoint,
        stored.generation,
        stored.gateway_id,
        oauth_provider(stored.spec.credentials),
        version,
        header_maps,
    )
    return stored, target, entries


class Cursors:
    """tools/list cursors ``<base64url([target name, index])>.<HMAC>``, bound to one gateway and
    signed with a key derived from the session secret: every replica accepts the cursors any of
    them issued, and nothing else (a forged cursor, or one of another gateway)."""

    MAX_LENGTH = 1024

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"gatehouse tools/list cursor", hashlib.sha256).digest()

    def make(self, gateway_id: str, key: tuple[str, int]) -> str:
        payload = b64(_encoder.encode(key))
        return f"{payload}.{sign(self._key, f'{gateway_id}.{payload}')}"

    def parse(self, gateway_id: str, cursor: str) -> tuple[str, int]:
        """The (target name, index) a cursor continues after; ValueError if we did not issue it."""
        payload, _, signature = cursor.partition(".")
        if len(cursor) > self.MAX_LENGTH or not cursor.isascii() or not payload:
            raise ValueError("unknown cursor")
        if not hmac.compare_digest(signature, sign(self._key, f"{gateway_id}.{payload}")):
            raise ValueError("unknown cursor")
        try:
            name, index = msgspec.json.decode(unb64(payload), type=tuple[str, int])
        except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error, ValueError):
            raise ValueError("unknown cursor") from None
        return name, index


class Catalog:
    """All gateways' catalogs, by gateway id. Changes are applied one at a time (a lock), so a slow
    reload of a whole gateway cannot put back an older snapshot over a target change made meanwhile."""

    def __init__(self, store: Store, semantic: tool_search.Semantic | None = None) -> None:
        self._store = store
        self._semantic = semantic  # an operator's embedding service for tool search, if any
        self._filling: dict[str, asyncio.Task[None]] = {}  # by gateway: embedding its new tools
        self._lock = asyncio.Lock()
        self.gateways: dict[str, GatewayCatalog] = {}
        self.loaded = False  # read from MongoDB once: the gateway can serve MCP (its /readyz)
        self.listeners = Waiters()  # subscriptions/listen streams, by gateway: woken when its tools change

    async def _rebuild(self, gateway_id: str, cat: GatewayCatalog, before: list[bytes] | None) -> None:
        """Rebuild ``cat`` and its search index; wake its listeners if its tool list is not what it
        was (``before``). The index is built in a worker thread from the one ``cat`` holds (only the
        targets that changed are analyzed again: docs/search.md); until it is there, a search of a
        live ``cat`` answers from the one before."""
        cat.rebuild()
        if not cat.searchable:
            cat.search = None
        else:
            try:
                cat.search = await asyncio.to_thread(tool_search.build, cat.search_entries(), cat.search)
                if self._semantic is not None:
                    cat.search = self._semantic.attach(gateway_id, cat.search)
                    self._fill(gateway_id, cat)
            except ValueError as exc:  # not expected (names are unique): keep searching the last index
                log.error("search index of gateway %s not rebuilt: %s", gateway_id, exc)
            gc.freeze()  # as rebuild: the index is long-lived too
        if before is None or before != cat.tools:
            self.listeners.wake(gateway_id)

    def _fill(self, gateway_id: str, cat: GatewayCatalog) -> None:
        """Embed the new tools of ``cat``'s index in the background: one task per gateway, which
        goes on with the gateway's newer index if one was built meanwhile."""
        running = self._filling.get(gateway_id)
        if self._semantic is None or cat.search is None or not self._semantic.missing(cat.search):
            return
        if running is not None and not running.done():
            return
        self._filling[gateway_id] = asyncio.create_task(self._semantic.keep_filled(gateway_id, self._live))

    async def _live(self, gateway_id: str) -> GatewayCatalog | None:
        """A gateway's catalog once no change is being applied (a change installs its catalog last)."""
        async with self._lock:
            return self.gateways.get(gateway_id)

    async def reload_all(self) -> None:
        """Re-read the gateways, and the tools of only the targets whose ``stamp`` changed; rebuild
        only the gateways that changed."""
        async with self._lock:
            known = {tid: t.stamp for cat in self.gateways.values() for tid, t in cat.targets.items()}
            stamps = await self._store.target_stamps()
            changed = [tid for tid, (_, stamp) in stamps.items() if known.get(tid) != stamp]
            fresh = {t.id: t for t in await self._store.targets_by_id(changed)} if changed else {}
            gateways: dict[str, GatewayCatalog] = {}
            dirty: set[str] = set()
            for doc in await self._store.all_gateways():
                old = self.gateways.get(doc["_id"])
                if old is not None and old.gateway == doc:
                    gateways[doc["_id"]] = old
                else:
                    gateways[doc["_id"]] = old.copy(doc) if old else GatewayCatalog(doc)
                    dirty.add(doc["_id"])
            for tid, fresh_target in fresh.items():
                if (cat := gateways.get(fresh_target.gateway_id)) is not None:
                    cat.targets[tid] = fresh_target
                    dirty.add(fresh_target.gateway_id)
            for gid, cat in gateways.items():
                for tid in [t for t in cat.targets if t not in stamps]:
                    del cat.targets[tid]
                    dirty.add(gid)
            for gid in dirty:
                old = self.gateways.get(gid)
                await self._rebuild(gid, gateways[gid], old.tools if old else None)
            self.gateways = gateways
            self.loaded = True
            log.debug("catalog reloaded: %d gateways rebuilt, %d targets re-read", len(dirty), len(fresh))

    async def reload_gateway(self, gateway_id: str) -> None:
        async with self._lock:
            await self._reload_gateway(gateway_id)

    async def _reload_gateway(self, gateway_id: str) -> None:
        doc = await self._store.get_gateway(gateway_id)
        if doc is None:
            self.gateways.pop(gateway_id, None)
            return
        old = self.gateways.get(gateway_id)
        cat = GatewayCatalog(doc, search=old.search if old else None)
        for target in await self._store.catalog_targets(gateway_id):
            cat.targets[target.id] = target
        await self._rebuild(gateway_id, cat, old.tools if old else None)
        self.gateways[gateway_id] = cat

    async def reload_target(self, gateway_id: str, target_id: str) -> None:
        async with self._lock:
            cat = self.gateways.get(gateway_id)
            if cat is None:
                await self._reload_gateway(gateway_id)
                return
            target = await self._store.get_target(gateway_id, target_id, with_tools=True)
            if target is None:
                cat.targets.pop(target_id, None)
            else:
                cat.targets[target_id] = target
            await self._rebuild(gateway_id, cat, cat.tools)

    async def drop_target(self, gateway_id: str, target_id: str) -> None:
        async with self._lock:
            cat = self.gateways.get(gateway_id)
            if cat is not None and cat.targets.pop(target_id, None) is not None:
                await self._rebuild(gateway_id, cat, cat.tools)
