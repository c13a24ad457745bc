"""The tools/call error table: each row's code, message and outcome, and the most specific row wins."""

from __future__ import annotations

import pytest

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.errors import BadRequest, Forbidden, GatehouseError, Unavailable
from gatehouse_contracts.mcp_client import (
    EndpointNotAllowed,
    McpClientError,
    NotAnMcpServer,
    UpstreamRpcError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from gatehouse_gateway.call_errors import CAUGHT, TABLE, UPSTREAM_ERROR, translate


def test_an_upstream_rpc_error_passes_through() -> None:
    outcome, error = translate(UpstreamRpcError(-32000, "boom", {"x": 1}), "t")
    assert outcome == "upstream_error"
    assert (error.code, error.message, error.data) == (-32000, "boom", {"x": 1})


@pytest.mark.parametrize("exc", [UpstreamUnreachable("refused"), UpstreamTimeout("refused")])
def test_unreachable_and_timeout(exc: McpClientError) -> None:
    outcome, error = translate(exc, "t")
    assert outcome == "unreachable"
    assert (error.code, error.message, error.data) == (
        UPSTREAM_ERROR,
        "Target 't' is unreachable: refused",
        {"target": "t"},
    )


@pytest.mark.parametrize("exc", [NotAnMcpServer("html"), EndpointNotAllowed("html"), McpClientError("html")])
def test_other_client_errors_fail(exc: McpClientError) -> None:
    outcome, error = translate(exc, "t")
    assert outcome == "upstream_error"
    assert (error.code, error.message, error.data) == (
        UPSTREAM_ERROR,
        "Target 't' failed: html",
        {"target": "t"},
    )


def test_bad_request_is_invalid_params() -> None:
    outcome, error = translate(BadRequest("returnUrl not allowed"), "t")
    assert outcome == "upstream_error"
    assert (error.code, error.message, error.data) == (
        jsonrpc.INVALID_PARAMS,
        "Invalid params: returnUrl not allowed",
        None,
    )


@pytest.mark.parametrize("exc", [GatehouseError("no"), Forbidden("no"), Unavailable("no")])
def test_other_gatehouse_errors_mean_no_credentials(exc: GatehouseError) -> None:
    outcome, error = translate(exc, "t")
    assert outcome == "upstream_error"
    assert (error.code, error.message, error.data) == (
        UPSTREAM_ERROR,
        "Target 't': no credentials: no",
        {"target": "t"},
    )


def test_tools_call_catches_exactly_the_rows() -> None:
    assert set(CAUGHT) == set(TABLE)
