"""The search tool of a gateway with ``protocolConfiguration.mcp.searchType: "SEMANTIC"``: AgentCore's
``x_amz_bedrock_agentcore_search`` contract over ``search.SearchIndex`` (docs/search.md).

``tools/list`` carries the tool's definition (``DEFINITION``, one more entry of the catalog's cached
pages); a ``tools/call`` of it answers the best-matching tools of the gateway, each as ``tools/list``
gives it (the catalog's own encoded bytes, held by the index), in ``structuredContent.tools`` and as
the same JSON in ``content[0].text``. The index follows the catalog: ``Catalog`` rebuilds it in a
worker thread after each change of a searchable gateway, from the previous one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.jsonrpc import JsonRpcError

from .search import MAX_QUERY_CHARS, SearchIndex

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

    __slots__ = ("definitions", "index")

    def __init__(self, index: SearchIndex) -> None:
        self.index = index
        self.definitions = dict(index.keys)


def build(entries: Iterable[tuple[str, bytes]], previous: Searchable | None) -> Searchable:
    """The index of a catalog's listed tools (prefixed name, encoded definition), reusing what
    ``previous`` analyzed of unchanged targets. Slow at 10,000s of tools: run it in a worker thread."""
    unique = dict(entries)  # a name twice (a target that lists a tool twice): the last one, as routing has it
    return Searchable(SearchIndex.build(unique.items(), previous.index if previous is not None else None))


def call(searchable: Searchable | None, arguments: Any) -> bytes:
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
        found = [searchable.definitions[name] for name in searchable.index.search(query, MAX_RESULTS)]
    tools = b'{"tools":[' + b",".join(found) + b"]}"
    text = msgspec.json.encode(tools.decode())
    return b'{"content":[{"type":"text","text":' + text + b'}],"structuredContent":' + tools + b"}"


def _error(message: str) -> bytes:
    return msgspec.json.encode(
        {"content": [{"type": "text", "text": f"Invalid arguments: {message}"}], "isError": True}
    )
