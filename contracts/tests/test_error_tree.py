"""Every error the contracts raise sits in the GatehouseError tree, keeping the bases callers rely on."""

from __future__ import annotations

import pytest

from gatehouse_contracts.config import SettingsError
from gatehouse_contracts.errors import BadRequest, GatehouseError, Unauthorized, Unavailable
from gatehouse_contracts.jwt import InvalidToken, IssuerUnavailable
from gatehouse_contracts.mcp_client import McpClientError, UpstreamRpcError
from gatehouse_contracts.netguard import EndpointDenied
from gatehouse_contracts.outbound import FetchFailed, ResponseTooLarge
from gatehouse_contracts.tools import InvalidTool


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (InvalidToken, Unauthorized),
        (IssuerUnavailable, Unavailable),
        (InvalidTool, BadRequest),
        (InvalidTool, ValueError),
        (EndpointDenied, BadRequest),  # an admin's URL on a denied network is a 400 as it is
        (EndpointDenied, OSError),  # HTTP clients treat a refusal at connect time as a failed connect
        (McpClientError, GatehouseError),
        (FetchFailed, GatehouseError),
        (ResponseTooLarge, GatehouseError),
        (SettingsError, GatehouseError),
    ],
)
def test_each_error_has_its_place(cls: type[Exception], base: type[Exception]) -> None:
    assert issubclass(cls, GatehouseError)
    assert issubclass(cls, base)


def test_an_error_keeps_its_message() -> None:
    denied = EndpointDenied("169.254.169.254 is a denied network")
    assert (str(denied), denied.message) == ("169.254.169.254 is a denied network",) * 2
    rpc = UpstreamRpcError(-32000, "boom", {"x": 1})
    assert (rpc.rpc_code, rpc.message, rpc.data, str(rpc)) == (-32000, "boom", {"x": 1}, "error -32000: boom")
