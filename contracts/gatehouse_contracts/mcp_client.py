"""The one small Streamable HTTP MCP client (2025-11-25) that gateway and sync-worker share.

Errors, all ``McpClientError``:
    UpstreamUnreachable   connection refused / DNS / reset
    UpstreamTimeout       no answer in time
    NotAnMcpServer        the answer is not MCP (HTML, wrong status, not JSON-RPC, a malformed error)
    UpstreamTooLarge      the answer is larger than the limit (``McpHttp.max_response_bytes``)
    UpstreamUnauthorized  HTTP 401/403 from the target
    UpstreamSessionLost   HTTP 404 for our session id: initialize again
    EndpointNotAllowed    the endpoint resolves to a denied network
    UpstreamRpcError      a JSON-RPC error answer (code, message, data kept)
"""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import aiohttp
import msgspec

from . import jsonrpc
from .errors import GatehouseError
from .netguard import EndpointDenied, EndpointGuard, denial

LATEST_PROTOCOL_VERSION = "2025-11-25"
SUPPORTED_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
CLIENT_INFO = {"name": "gatehouse", "version": "0.1.0"}


class McpClientError(GatehouseError):
    """Base of every failure talking to an upstream MCP server; the text is safe to show."""


class UpstreamUnreachable(McpClientError):
    pass


class UpstreamTimeout(McpClientError):
    pass


class NotAnMcpServer(McpClientError):
    pass


class UpstreamUnauthorized(McpClientError):
    pass


class UpstreamSessionLost(McpClientError):
    pass


class UpstreamTooLarge(McpClientError):
    pass


class EndpointNotAllowed(McpClientError):
    """The endpoint is on a denied network (see ``netguard``)."""


class UpstreamRpcError(McpClientError):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"error {code}: {message}")
        self.rpc_code = code  # (``code`` is GatehouseError's wire name)
        self.message = message
        self.data = data


_decode = msgspec.json.Decoder().decode


IDLE_SECONDS = 4.0  # keep-alive of pooled upstream connections
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_CONNECTIONS = 512
MAX_CONNECTIONS_PER_HOST = 128


class McpHttp:
    """The keep-alive HTTP connections every ``McpSession`` of a process shares.

    aiohttp rather than httpx on this path: under concurrent calls httpx 0.28 spends many times
    aiohttp's CPU per request, as its pool scans every connection per request (BENCHMARKS.md §6).
    No cookie jar (one user's upstream cookies must never ride along on another's call), no
    proxy from the environment, no redirects. An idle connection is closed after 4 s, before
    common servers close theirs (uvicorn and Node.js: 5 s), so a call is rarely written into a
    connection the server is closing; a tools/call is not retried, it may not be idempotent.
    The session is made on first use, inside the loop. Connections go only where ``guard``
    allows: the deny-list is applied to the addresses a host name resolves to, each time it does.

    Limits: ``max_connections`` in all; ``max_per_host`` to one host and port, so a target that
    hangs holds at most that many and the others' calls keep going; ``max_response_bytes`` of one
    answer, read no further (``UpstreamTooLarge``).
    """

    def __init__(
        self,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_per_host: int = MAX_CONNECTIONS_PER_HOST,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        guard: EndpointGuard | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._max_per_host = max_per_host
        self.max_response_bytes = max_response_bytes
        self.guard = guard or EndpointGuard()
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections,
                    limit_per_host=self._max_per_host,
                    keepalive_timeout=IDLE_SECONDS,
                    resolver=self.guard.aiohttp_resolver(),  # the deny-list, on every connection
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Reply(msgspec.Struct):
    status: int
    content_type: str
    body: bytes


class ToolResult(msgspec.Struct, frozen=True):
    """A ``tools/call`` result as the server sent it: the JSON object's bytes, passed on as they are
    (a proxy need not decode and re-encode a large tool output), and its ``isError`` flag."""

    raw: bytes
    is_error: bool


class _Envelope(msgspec.Struct):
    """A JSON-RPC answer with its ``result`` left undecoded."""

    jsonrpc: str = ""
    id: Any = None
    result: msgspec.Raw = msgspec.Raw(b"")  # (a union with None would not hold a Raw)
    error: Any = None


class _Flags(msgspec.Struct):
    isError: Any = False  # noqa: N815 (the MCP field name)


# SSE ends lines with CRLF, CR or LF only; str.splitlines() would also split on U+2028, U+2029,
# U+0085 and other characters JSON writers leave unescaped inside strings.
_SSE_LINE_END = re.compile("\r\n|\r|\n")


def _sse_messages(text: str) -> list[Any]:
    """The JSON payloads of the ``data:`` fields of an SSE body, one per event."""
    out: list[Any] = []
    data: list[str] = []
    for line in _SSE_LINE_END.split(text) + [""]:
        if line == "":
            if data:
                try:
                    out.append(_decode("\n".join(data)))
                except (msgspec.DecodeError, RecursionError):
                    pass
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return out


class McpSession:
    """One MCP session with one server; ``initialize`` once, then requests; safe to share."""

    def __init__(
        self,
        http: McpHttp,
        endpoint: str,
        *,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._http = http
        self.endpoint = endpoint
        self.timeout = timeout
        self.extra_headers = dict(headers or {})
        self._headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        self._headers.update(self.extra_headers)
        self._ids = itertools.count(1)
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.server_info: dict[str, Any] = {}
        self.in_flight = 0  # requests sent and not yet answered (a pool closes only idle sessions)

    async def initialize(self) -> None:
        try:  # a literal address; host names are checked each time they resolve
            self._http.guard.check_url(self.endpoint)
        except EndpointDenied as exc:
            raise EndpointNotAllowed(str(exc)) from None
        result = await self._request(
            "initialize",
            {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": CLIENT_INFO,
            },
        )
        version = result.get("protocolVersion")
        if version not in SUPPORTED_PROTOCOL_VERSIONS:
            raise NotAnMcpServer(
                f"the server answered initialize with unsupported protocol version {version!r}"
            )
        self.protocol_version = str(version)
        info = result.get("serverInfo")
        self.server_info = info if isinstance(info, dict) else {}
        await self._notify("notifications/initialized")

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.protocol_version is None:
            raise RuntimeError("initialize() first")
        return await self._request(method, params)

    async def list_tools(self, *, max_tools: int, max_pages: int = 1000) -> list[Any]:
        """Every page of ``tools/list``; stops early (returning what it has) past ``max_tools``."""
        tools: list[Any] = []
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.request("tools/list", {"cursor": cursor} if cursor else {})
            batch = page.get("tools")
            if not isinstance(batch, list):
                raise NotAnMcpServer('the tools/list answer has no "tools" list')
            tools.extend(batch)
            cursor = page.get("nextCursor")
            if not cursor or len(tools) > max_tools:
                return tools
        raise NotAnMcpServer(f"tools/list did not end after {max_pages} pages")

    async def call_tool(
        self, name: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None
    ) -> ToolResult:
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        if self.protocol_version is None:
            raise RuntimeError("initialize() first")
        reply, msg_id = await self._exchange("tools/call", params)
        if reply.content_type.lower() == "application/json":
            return _raw_result(reply, msg_id)
        result = self._answer(reply, msg_id)  # an SSE stream: its messages are decoded anyway
        return ToolResult(msgspec.json.encode(result), bool(result.get("isError")))

    async def close(self) -> None:
        """End the session at the server (DELETE); failures are ignored, the session is gone for us."""
        if self.session_id is None:
            return
        try:
            async with asyncio.timeout(5.0):
                async with self._http.session().delete(
                    self.endpoint, headers=self._session_headers(), allow_redirects=False
                ):
                    pass
        except (TimeoutError, aiohttp.ClientError):
            pass
        self.session_id = None

    # -- plumbing --------------------------------------------------------------------------

    def _session_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    async def _request(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        return self._answer(*await self._exchange(method, params))

    async def _exchange(self, method: str, params: dict[str, Any] | None) -> tuple[_Reply, int]:
        """Send one request; the raw answer and the request's id."""
        msg_id = next(self._ids)
        return await self._send(jsonrpc.request(msg_id, method, params)), msg_id

    async def _notify(self, method: str) -> None:
        reply = await self._send(jsonrpc.notification(method))
        if reply.status >= 400:
            raise NotAnMcpServer(f"the server answered HTTP {reply.status}")

    async def _send(self, body: bytes) -> _Reply:
        """POST one message; transport faults and HTTP refusals become our errors."""
        self.in_flight += 1
        try:
            async with asyncio.timeout(self.timeout):
                async with self._http.session().post(
                    self.endpoint, data=body, headers=self._session_headers(), allow_redirects=False
                ) as response:
                    content = await _read(response, self._http.max_response_bytes)
                    reply = _Reply(response.status, response.content_type, content)
                    sid = response.headers.get("mcp-session-id")
        except TimeoutError:
            raise UpstreamTimeout(f"no answer within {self.timeout:g}s") from None
        except (aiohttp.ClientError, ValueError) as exc:
            if (denied := denial(exc)) is not None:
                raise EndpointNotAllowed(str(denied)) from None
            raise UpstreamUnreachable(f"cannot connect ({type(exc).__name__})") from None
        finally:
            self.in_flight -= 1
        if reply.status in (401, 403):
            raise UpstreamUnauthorized(f"the server refused the credentials (HTTP {reply.status})")
        if reply.status == 404 and self.session_id:
            raise UpstreamSessionLost("the server no longer knows our session")
        if sid:
            self.session_id = sid
        return reply

    def _answer(self, reply: _Reply, msg_id: int) -> dict[str, Any]:
        ctype = reply.content_type.lower()
        if ctype == "text/event-stream":
            candidates = _sse_messages(reply.body.decode("utf-8", "replace"))
        elif ctype == "application/json":
            try:
                candidates = [_decode(reply.body)]
            except (msgspec.DecodeError, RecursionError):
                raise NotAnMcpServer("the server sent invalid (or too deeply nested) JSON") from None
        else:
            has = "no content type" if ctype in ("", "application/octet-stream") else ctype
            raise NotAnMcpServer(f"the server answered HTTP {reply.status} with {has}, not MCP")
        for msg in candidates:
            if isinstance(msg, dict) and msg.get("id") == msg_id and msg.get("jsonrpc") == "2.0":
                if isinstance(err := msg.get("error"), dict):
                    raise _rpc_error(err)
                if isinstance(res := msg.get("result"), dict):
                    return res
                raise NotAnMcpServer("the server's JSON-RPC answer has no result object")
        raise _no_response(reply)


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, but no more than ``limit`` bytes of it: a longer answer is refused at once (a
    declared length) or as soon as it passes the limit (chunked, SSE), the rest left unread."""
    declared = response.content_length
    if declared is not None:  # aiohttp reads no more than the declared length
        if declared > limit:
            raise UpstreamTooLarge(f"the answer is larger than {limit} bytes")
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise UpstreamTooLarge(f"the answer is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _raw_result(reply: _Reply, msg_id: int) -> ToolResult:
    """The result of a JSON answer without decoding it (its syntax and UTF-8 are still checked)."""
    try:
        answer = msgspec.json.decode(reply.body, type=_Envelope)
        raw = bytes(answer.result)
        raw.decode("utf-8")
        flags = msgspec.json.decode(raw, type=_Flags) if raw.startswith(b"{") else None
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
        raise NotAnMcpServer("the server sent invalid (or too deeply nested) JSON") from None
    if answer.jsonrpc != "2.0" or answer.id != msg_id:
        raise _no_response(reply)
    if isinstance(err := answer.error, dict):
        raise _rpc_error(err)
    if flags is None:
        raise NotAnMcpServer("the server's JSON-RPC answer has no result object")
    return ToolResult(raw, bool(flags.isError))


def _rpc_error(err: dict[str, Any]) -> McpClientError:
    """The server's JSON-RPC error, kept as it is only when well formed (an integer code, a string
    message): anything else is the server's fault, not an error to pass on."""
    code, message = err.get("code"), err.get("message", "")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
        return NotAnMcpServer(
            "the server sent a malformed JSON-RPC error (its code must be an integer, its message a string)"
        )
    return UpstreamRpcError(code, message, err.get("data"))


def _no_response(reply: _Reply) -> NotAnMcpServer:
    """An answer without the JSON-RPC response to our request."""
    if reply.status >= 400:
        return NotAnMcpServer(f"the server answered HTTP {reply.status}")
    return NotAnMcpServer("the server's answer carries no JSON-RPC response to our request")
