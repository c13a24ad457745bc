"""The search tool's answer and its place in a catalog's tools/list (pure logic; the MCP endpoint
in both eras is proven by tests/test_tool_search.py)."""

from __future__ import annotations

import json

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


def test_the_answer_holds_the_listed_bytes_in_structured_content_and_as_text() -> None:
    entries = _entries()
    searchable = tool_search.build(entries, None)
    result = json.loads(tool_search.call(searchable, {"query": "open a ticket"}))
    assert result["structuredContent"] == {"tools": [json.loads(entries[0][1])]}
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
    assert "isError" not in result
    rebuilt = tool_search.build(entries[1:], searchable)  # a target gone: not found any more
    assert json.loads(tool_search.call(rebuilt, {"query": "open a ticket"}))["structuredContent"] == {
        "tools": []
    }


@pytest.mark.parametrize(
    "arguments", [{}, {"query": ""}, {"query": " "}, {"query": 1}, {"query": "x" * (MAX_QUERY_CHARS + 1)}]
)
def test_bad_queries_are_tool_errors(arguments: dict[str, object]) -> None:
    result = json.loads(tool_search.call(tool_search.build(_entries(), None), arguments))
    assert result["isError"] is True and result["content"][0]["text"].startswith("Invalid arguments: ")


def test_arguments_that_are_not_an_object_are_invalid_params() -> None:
    with pytest.raises(JsonRpcError) as error:
        tool_search.call(None, ["query"])
    assert error.value.code == -32602


def test_the_definition_is_agentcores() -> None:
    definition = json.loads(tool_search.DEFINITION)
    assert definition["name"] == "x_amz_bedrock_agentcore_search"
    assert definition["inputSchema"]["required"] == ["query"]
    assert definition["inputSchema"]["properties"]["query"]["type"] == "string"
