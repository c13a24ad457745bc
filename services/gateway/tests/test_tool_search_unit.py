"""The search tool's answer and its place in a catalog's tools/list (pure logic; the MCP endpoint
in both eras is proven by tests/test_tool_search.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence

import msgspec
import pytest

from gatehouse_contracts.jsonrpc import JsonRpcError
from gatehouse_gateway import tool_search
from gatehouse_gateway.search import MAX_QUERY_CHARS


def _entries() -> list[tuple[str, bytes]]:
    tools = [
        ("jira___create_issue", "Create a new issue"),
        ("slack___send_message", "Post a message to a channel"),
    ]
    return [
        (name, msgspec.json.encode({"name": name, "description": text, "inputSchema": {"type": "object"}}))
        for name, text in tools
    ]


async def test_the_answer_holds_the_listed_bytes_in_structured_content_and_as_text() -> None:
    entries = _entries()
    searchable = tool_search.build(entries, None)
    result = json.loads(await tool_search.call(searchable, {"query": "open a ticket"}))
    assert result["structuredContent"] == {"tools": [json.loads(entries[0][1])]}
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
    assert "isError" not in result
    rebuilt = tool_search.build(entries[1:], searchable)  # a target gone: not found any more
    assert json.loads(await tool_search.call(rebuilt, {"query": "open a ticket"}))["structuredContent"] == {
        "tools": []
    }


@pytest.mark.parametrize(
    "arguments", [{}, {"query": ""}, {"query": " "}, {"query": 1}, {"query": "x" * (MAX_QUERY_CHARS + 1)}]
)
async def test_bad_queries_are_tool_errors(arguments: dict[str, object]) -> None:
    result = json.loads(await tool_search.call(tool_search.build(_entries(), None), arguments))
    assert result["isError"] is True and result["content"][0]["text"].startswith("Invalid arguments: ")


async def test_arguments_that_are_not_an_object_are_invalid_params() -> None:
    with pytest.raises(JsonRpcError) as error:
        await tool_search.call(None, ["query"])
    assert error.value.code == -32602


def test_the_definition_is_agentcores() -> None:
    definition = json.loads(tool_search.DEFINITION)
    assert definition["name"] == "x_amz_bedrock_agentcore_search"
    assert definition["inputSchema"]["required"] == ["query"]
    assert definition["inputSchema"]["properties"]["query"]["type"] == "string"


class Concepts:
    """An embedder for pure-logic tests: "debt" and "invoice" share an axis, as a model's would."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.down = False

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self.down:
            raise ConnectionError("down")
        self.asked.extend(texts)
        return [[float("debt" in t or "invoice" in t), float("message" in t), 0.0] for t in texts]


def _with_ledger() -> list[tuple[str, bytes]]:
    ledger = {
        "name": "ledger___list_invoices",
        "description": "List invoices",
        "inputSchema": {"type": "object"},
    }
    return [*_entries(), ("ledger___list_invoices", msgspec.json.encode(ledger))]


class Live:
    def __init__(self, search: tool_search.Searchable | None) -> None:
        self.search = search


def _lookup(gateways: dict[str, Live]) -> Callable[[str], Awaitable[Live | None]]:
    async def current(gateway_id: str) -> Live | None:
        return gateways.get(gateway_id)

    return current


async def test_semantic_embeds_each_tool_once_and_finds_by_meaning() -> None:
    embedder = Concepts()
    semantic = tool_search.Semantic(embedder, timeout=1.0)
    live = Live(tool_search.build(_with_ledger(), None))
    assert semantic.missing(live.search)
    await semantic.keep_filled("g", _lookup({"g": live}))
    assert not semantic.missing(live.search) and len(embedder.asked) == 3
    found = json.loads(await tool_search.call(live.search, {"query": "who has debt"}, semantic))
    assert [t["name"] for t in found["structuredContent"]["tools"]] == ["ledger___list_invoices"]
    words_only = json.loads(await tool_search.call(live.search, {"query": "who has debt"}))
    assert words_only["structuredContent"]["tools"] == []

    # a rebuild after one target changed: the others' embeddings are attached at once, kept by tool
    rebuilt = semantic.attach("g", tool_search.build(_with_ledger()[1:], live.search))
    assert not semantic.missing(rebuilt)
    asked = len(embedder.asked)
    live.search = rebuilt
    await semantic.keep_filled("g", _lookup({"g": live}))
    assert len(embedder.asked) == asked  # the query of the search above, and nothing more


async def test_semantic_falls_back_to_words_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tool_search, "QUERY_REST_SECONDS", 0.05)
    embedder = Concepts()
    semantic = tool_search.Semantic(embedder, timeout=1.0, retry_seconds=0.01)
    live = Live(tool_search.build(_with_ledger(), None))
    embedder.down = True
    filling = asyncio.create_task(semantic.keep_filled("g", _lookup({"g": live})))
    await asyncio.sleep(0.03)
    assert not filling.done() and semantic.missing(live.search)  # retrying
    assert await semantic.query("debt") is None  # a search ranks by words meanwhile
    embedder.down = False
    await asyncio.wait_for(filling, 1)
    assert not semantic.missing(live.search)
    asked = len(embedder.asked)
    assert await semantic.query("debt") is None  # searches leave a failed service alone a while
    assert len(embedder.asked) == asked
    await asyncio.sleep(0.06)
    assert await semantic.query("debt") == [1.0, 0.0, 0.0]


async def test_semantic_does_not_swap_over_a_newer_index_and_forgets_a_gone_gateway() -> None:
    semantic = tool_search.Semantic(Concepts(), timeout=1.0)
    old = tool_search.build(_with_ledger(), None)
    live = Live(old)
    gateways: dict[str, Live] = {"g": live}
    filled = await semantic.fill("g", old)
    newer = tool_search.build(_entries(), old)
    live.search = newer
    await semantic.keep_filled("g", _lookup(gateways))
    assert live.search is not filled and not semantic.missing(live.search)
    del gateways["g"]
    await semantic.keep_filled("g", _lookup(gateways))
    assert semantic.attach("g", newer) is newer  # nothing kept for a gateway that is gone
