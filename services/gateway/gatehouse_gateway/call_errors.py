"""What a failed ``tools/call`` answers: one table from error type to JSON-RPC error and outcome.

    error type                    JSON-RPC code   tool.invoked outcome  message
    UpstreamRpcError              the target's    upstream_error        the target's own (and its data)
    UpstreamUnreachable, Timeout  -32001          unreachable           Target 'x' is unreachable: …
    McpClientError (any other)    -32001          upstream_error        Target 'x' failed: …
    BadRequest                    -32602          upstream_error        Invalid params: …
    GatehouseError (any other)    -32001          upstream_error        Target 'x': no credentials: …

(-32001 is ``UPSTREAM_ERROR``, -32602 JSON-RPC's invalid params.)

An error's most specific class in the table wins (its MRO is walked), so a subclass listed here is
never shadowed by its base, whatever the order of the rows. ``AuthorizationRequired`` is not here: it
is answered with a result (the URL elicitation), not an error. Only the error path looks here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.errors import BadRequest, GatehouseError
from gatehouse_contracts.events import ToolOutcome
from gatehouse_contracts.jsonrpc import JsonRpcError
from gatehouse_contracts.mcp_client import (
    McpClientError,
    UpstreamRpcError,
    UpstreamTimeout,
    UpstreamUnreachable,
)

UPSTREAM_ERROR = -32001  # the target failed: unreachable, timed out, or not speaking MCP

# each row's function takes the row's own error type
Translate = Callable[[Any, str], JsonRpcError]


def _passed_through(exc: UpstreamRpcError, target: str) -> JsonRpcError:
    return JsonRpcError(exc.rpc_code, exc.message, exc.data)


def _unreachable(exc: McpClientError, target: str) -> JsonRpcError:
    return JsonRpcError(UPSTREAM_ERROR, f"Target {target!r} is unreachable: {exc}", {"target": target})


def _failed(exc: McpClientError, target: str) -> JsonRpcError:
    return JsonRpcError(UPSTREAM_ERROR, f"Target {target!r} failed: {exc}", {"target": target})


def _invalid_params(exc: BadRequest, target: str) -> JsonRpcError:
    # identity refused what this call asked for (e.g. a return URL)
    return JsonRpcError(jsonrpc.INVALID_PARAMS, f"Invalid params: {exc.message}")


def _no_credentials(exc: GatehouseError, target: str) -> JsonRpcError:
    # identity would not give a token for the target
    return JsonRpcError(
        UPSTREAM_ERROR, f"Target {target!r}: no credentials: {exc.message}", {"target": target}
    )


TABLE: dict[type[Exception], tuple[ToolOutcome, Translate]] = {
    UpstreamRpcError: ("upstream_error", _passed_through),
    UpstreamUnreachable: ("unreachable", _unreachable),
    UpstreamTimeout: ("unreachable", _unreachable),
    McpClientError: ("upstream_error", _failed),
    BadRequest: ("upstream_error", _invalid_params),
    GatehouseError: ("upstream_error", _no_credentials),
}

# what ``tools/call`` catches: exactly the table's rows
CAUGHT: tuple[type[Exception], ...] = tuple(TABLE)


def translate(exc: Exception, target: str) -> tuple[ToolOutcome, JsonRpcError]:
    """The outcome and the JSON-RPC error for ``exc``, raised while calling a tool of ``target``."""
    for cls in type(exc).__mro__:
        row = TABLE.get(cls)
        if row is not None:
            outcome, to_error = row
            return outcome, to_error(exc, target)
    raise AssertionError(f"{type(exc).__name__} is not in the tools/call error table")  # CAUGHT == TABLE
