"""The HTTP Basic credentials of a workload, parsed strictly."""

from __future__ import annotations

import base64

import pytest
from starlette.requests import Request

from gatehouse_identity.errors import Unauthorized
from gatehouse_identity.workload_auth import basic_credentials


def _request(authorization: str | None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization is not None else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_basic_credentials() -> None:
    assert basic_credentials(_request(_basic(b"agent-1:s3cr:et"))) == ("agent-1", "s3cr:et")
    assert basic_credentials(_request(None)) is None
    assert basic_credentials(_request("Bearer x")) is None  # the admin's, checked elsewhere
    for bad in ("Basic !!!", _basic(b"no-colon"), _basic(b":secret"), _basic(b"name:"), _basic(b"\xcd:x")):
        with pytest.raises(Unauthorized, match="malformed"):
            basic_credentials(_request(bad))
