"""A gateway's tools as its MCP clients see them: ``initialize``, ``tools/list`` (every page), then
the session is ended. Plain JSON-RPC over Streamable HTTP: the gateway answers each request with one
JSON body, so no SDK is needed. The admin token is not an MCP credential: a ``CUSTOM_JWT`` gateway
takes a user's JWT (``--token`` / ``GATEHOUSE_USER_TOKEN``)."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import httpx

from .api import ApiError

PROTOCOL_VERSION = "2025-11-25"


class _Session:
    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http, self.url = http, url
        self.ids = itertools.count(1)
        self.headers = {"Accept": "application/json, text/event-stream"}

    def post(self, message: dict[str, Any]) -> httpx.Response:
        try:
            response = self.http.post(self.url, json=message, headers=self.headers)
        except httpx.ConnectError as exc:
            raise ApiError(f"cannot connect to {self.url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise ApiError(f"{self.url}: {exc}") from None
        if response.status_code >= 400:
            hint = (
                " (a CUSTOM_JWT gateway needs a user's JWT: --token)" if response.status_code == 401 else ""
            )
            raise ApiError(f"HTTP {response.status_code} from {self.url}: {_message(response)}{hint}")
        return response

    def call(self, method: str, params: dict[str, Any], msg_id: int | None = None) -> Any:
        message = {"jsonrpc": "2.0", "id": next(self.ids) if msg_id is None else msg_id, "method": method}
        self.last = self.post({**message, "params": params})
        try:
            answer = self.last.json()
        except ValueError:
            raise ApiError(
                f"{self.url} did not answer {method} with JSON: is it a gateway's MCP URL?"
            ) from None
        if "error" in answer:
            error = answer["error"]
            raise ApiError(f"{method}: JSON-RPC error {error.get('code')}: {error.get('message')}")
        return answer["result"]


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


def list_tools(gateway_url: str, token: str | None, timeout: float = 30.0) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(headers=headers, timeout=timeout) as http:
        session = _Session(http, gateway_url)
        hello = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "gatehouse-cli", "version": "1"},
        }
        result = session.call("initialize", hello, msg_id=0)
        session.headers["Mcp-Session-Id"] = session.last.headers.get("mcp-session-id", "")
        session.headers["MCP-Protocol-Version"] = result["protocolVersion"]
        session.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            while True:
                page = session.call("tools/list", {"cursor": cursor} if cursor else {})
                tools += page["tools"]
                cursor = page.get("nextCursor")
                if not cursor:
                    return tools
        finally:
            with contextlib.suppress(httpx.HTTPError):  # ending the session is a courtesy
                http.delete(gateway_url, headers=session.headers)
