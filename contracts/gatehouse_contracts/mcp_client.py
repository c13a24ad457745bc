"""The one small Streamable HTTP MCP client that gateway and sync-worker share; it speaks both eras.

A target speaks the handshake era (2025-11-25 and before: ``initialize``, ``Mcp-Session-Id``) or the
modern one (2026-07-28: no handshake and no session; every request carries its version and the
client's capabilities in ``params._meta`` and mirrors them into headers, ``MCP-Protocol-Version``,
``Mcp-Method``, ``Mcp-Name``). ``McpSession.open()`` finds out which, as the SDK's dual-era client
does: a ``server/discover`` probe at 2026-07-28; anything that is not positive evidence of a modern
server (an error answer, an HTTP 4xx, a discover result naming no modern version) falls back to
``initialize``. The era is a property of the server: the sync-worker records it on the target and
the gateway opens its sessions in that era without a probe (``open(protocol_version)``).

A ``tools/call`` can report progress (``CallOptions.on_progress``) and is cancelled by cancelling
the caller's task: the HTTP stream is closed (2026-07-28's cancellation) and, in the handshake era,
``notifications/cancelled`` is sent as 2025-11-25 asks. A modern target's interim
``input_required`` result comes back typed (``ToolResult.input_required``), and a handshake target's
-32042 as ``UpstreamUrlElicitationRequired``.

Errors, all ``McpClientError``:
    UpstreamUnreachable   connection refused / DNS / reset
    UpstreamTimeout       no answer in time
    NotAnMcpServer        the answer is not MCP (HTML, wrong status, not JSON-RPC, a malformed error)
    UpstreamTooLarge      the answer is larger than the limit (``McpHttp.max_response_bytes``)
    UpstreamUnauthorized  HTTP 401/403 from the target
    UpstreamSessionLost   HTTP 404 for our session id: initialize again
    EndpointNotAllowed    the endpoint resolves to a denied network
    UpstreamRpcError      a JSON-RPC error answer (code, message, data kept); -32042 (URL
                          elicitation required) is its subclass UpstreamUrlElicitationRequired
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import itertools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from . import jsonrpc, tracing
from .errors import GatehouseError
from .netguard import EndpointDenied, EndpointGuard, denial

LATEST_PROTOCOL_VERSION = "2025-11-25"  # of the handshake era
SUPPORTED_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")  # handshake era
MODERN_PROTOCOL_VERSION = "2026-07-28"
MODERN_PROTOCOL_VERSIONS = (MODERN_PROTOCOL_VERSION,)
CLIENT_INFO = {"name": "gatehouse", "version": "0.1.0"}

UNSUPPORTED_PROTOCOL_VERSION = -32022  # 2026-07-28's UnsupportedProtocolVersionError
URL_ELICITATION_REQUIRED = -32042  # 2025-11-25's URLElicitationRequiredError
DISCOVER_TIMEOUT_SECONDS = 10.0  # the probe's own limit, as the SDK's (a silent legacy server falls back)
CANCEL_TIMEOUT_SECONDS = 5.0  # for sending notifications/cancelled

# the 2026-07-28 request envelope (params._meta) and result stamp
META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
# the methods whose Mcp-Name header mirrors a params field
_NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")
_MAX_SAFE_INTEGER = 2**53 - 1


HeaderMap = tuple[tuple[tuple[str, ...], str], ...]
"""A tool's ``x-mcp-header`` annotations (``tools.header_map``): (the property's path of
``properties`` keys, the name of its ``Mcp-Param-<name>`` header)."""


def param_headers(header_map: HeaderMap, arguments: Any) -> dict[str, str]:
    """The ``Mcp-Param-<name>`` headers of a 2026-07-28 ``tools/call``: each annotated argument
    present and not null, a string as it is, an integer in decimal, a boolean as true/false (in
    JavaScript's safe integer range; anything else has no header form and is left out)."""
    headers: dict[str, str] = {}
    for path, name in header_map:
        value = arguments
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int) and abs(value) <= _MAX_SAFE_INTEGER:
            text = str(value)
        elif isinstance(value, str):
            text = value
        else:
            continue
        headers[f"Mcp-Param-{name}"] = encode_header_value(text)
    return headers


def is_modern(version: str | None) -> bool:
    """Whether ``version`` is of the 2026-07-28 era (per-request metadata, no handshake)."""
    return version in MODERN_PROTOCOL_VERSIONS


def encode_header_value(value: str) -> str:
    """A value as a 2026-07-28 mirrored header carries it: as it is when it is printable ASCII
    without edge whitespace, else (or when it looks like the sentinel) ``=?base64?<UTF-8>?=``."""
    if (
        _HEADER_SAFE.fullmatch(value)
        and value == value.strip()
        and not (value.startswith("=?base64?") and value.endswith("?="))
    ):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode('ascii')}?="


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


class UpstreamUrlElicitationRequired(UpstreamRpcError):
    """A handshake-era target's -32042: the user must visit a URL first. ``elicitations`` are the
    well-formed ones of ``data.elicitations`` (each a dict with at least a string ``url``); the
    error still passes through as the target sent it wherever an ``UpstreamRpcError`` does."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        found = data.get("elicitations") if isinstance(data, dict) else None
        self.elicitations: list[dict[str, Any]] = [
            e for e in found or [] if isinstance(e, dict) and isinstance(e.get("url"), str)
        ]


ProgressCallback = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class CallOptions:
    """What a ``tools/call`` may carry beyond name, arguments and ``_meta``.

    ``on_progress`` gets the params of every ``notifications/progress`` the target sends for the
    call (a ``progressToken`` is added to ``_meta`` if the caller's has none; the caller's is kept,
    so a client's own token comes back as it sent it). ``client_capabilities`` is what the 2026-07-28
    envelope declares (``{}`` by default: a target then must not ask for input); the caller declares
    only what its own client can do. ``input_responses``/``request_state`` retry an
    ``input_required`` answer (2026-07-28 MRTR). ``header_map``: the tool's ``x-mcp-header``
    annotations (``tools.header_map``), whose arguments a 2026-07-28 call mirrors into headers."""

    on_progress: ProgressCallback | None = None
    client_capabilities: dict[str, Any] | None = None
    input_responses: dict[str, Any] | None = None
    request_state: str | None = None
    header_map: HeaderMap = ()


NO_OPTIONS = CallOptions()


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
    messages: list[Any] | None = None  # of an SSE answer, decoded as they arrived


class InputRequired(msgspec.Struct, frozen=True):
    """A 2026-07-28 target's interim ``input_required`` result: it needs the client's answers to
    ``input_requests`` (and ``request_state`` echoed) on a retry of the same call."""

    raw: bytes  # the result object as the target sent it
    input_requests: dict[str, Any]
    request_state: str | None


class ToolResult(msgspec.Struct, frozen=True):
    """A ``tools/call`` result as the server sent it: the JSON object's bytes, passed on as they are
    (a proxy need not decode and re-encode a large tool output), and its ``isError`` flag.

    When the target answered ``input_required``, ``input_required`` holds that answer and ``raw`` is
    what a client that cannot take one gets instead: an ``isError`` result that says so."""

    raw: bytes
    is_error: bool
    input_required: InputRequired | None = None


class _Envelope(msgspec.Struct):
    """A JSON-RPC answer with its ``result`` left undecoded."""

    jsonrpc: str = ""
    id: Any = None
    result: msgspec.Raw = msgspec.Raw(b"")  # (a union with None would not hold a Raw)
    error: Any = None


class _Flags(msgspec.Struct):
    isError: Any = False  # noqa: N815 (the MCP field name)
    resultType: Any = "complete"  # noqa: N815 (2026-07-28; earlier servers omit it: complete)


# SSE ends lines with CRLF, CR or LF only; str.splitlines() would also split on U+2028, U+2029,
# U+0085 and other characters JSON writers leave unescaped inside strings.
_SSE_LINE_END = re.compile("\r\n|\r|\n")


class _SseParser:
    """The JSON payloads of the ``data:`` fields of an SSE stream, one per event, as its text
    arrives in pieces (a line or a CRLF may be split between two)."""

    def __init__(self) -> None:
        self._tail = ""  # the unfinished last line
        self._data: list[str] = []

    def feed(self, text: str) -> list[Any]:
        lines = _SSE_LINE_END.split(self._tail + text)
        self._tail = lines.pop()
        if self._tail == "" and lines and text.endswith("\r"):
            self._tail = lines.pop() + "\r"  # maybe the first half of a CRLF: wait for the next piece
        return self._lines(lines)

    def close(self) -> list[Any]:
        tail, self._tail = self._tail.removesuffix("\r"), ""
        return self._lines([tail, ""])

    def _lines(self, lines: list[str]) -> list[Any]:
        out: list[Any] = []
        for line in lines:
            if line == "":
                if self._data:
                    try:
                        out.append(_decode("\n".join(self._data)))
                    except (msgspec.DecodeError, RecursionError):
                        pass
                    self._data = []
            elif line.startswith("data:"):
                self._data.append(line[5:].removeprefix(" "))
        return out


def _sse_messages(text: str) -> list[Any]:
    """The JSON payloads of the ``data:`` fields of a whole SSE body, one per event."""
    parser = _SseParser()
    return parser.feed(text) + parser.close()


class McpSession:
    """One MCP session with one server, in one era: ``open()`` once, then requests; safe to share.

    In the handshake era ``open()`` is ``initialize`` and the session has an ``Mcp-Session-Id``;
    in the 2026-07-28 era there is no session at the server, and every request carries the envelope.
    """

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
        self._background: set[asyncio.Task[None]] = set()  # notifications/cancelled being sent
        self._retired = False  # close once the last request in flight is answered (``retire``)

    @property
    def modern(self) -> bool:
        """This session speaks 2026-07-28 (no handshake, no server-side session)."""
        return self.protocol_version in MODERN_PROTOCOL_VERSIONS

    async def open(self, protocol_version: str | None = None) -> str:
        """Start talking, in the era already known for the server (``protocol_version``, recorded by
        a sync; a modern one costs no round trip), or, with None, in the one the probe finds. The
        answer is the version the session speaks."""
        self._check_endpoint()
        if is_modern(protocol_version):
            self.protocol_version = protocol_version
        elif protocol_version is not None or not await self._discover():
            return await self.initialize()
        return str(self.protocol_version)

    async def initialize(self) -> str:
        """The handshake era's ``initialize``, then ``notifications/initialized``; the version agreed."""
        self._check_endpoint()
        self.protocol_version = None
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
        return self.protocol_version

    async def _discover(self) -> bool:
        """Probe ``server/discover`` at 2026-07-28, the way the SDK's ``mode="auto"`` client does;
        True (and the session is modern) when the server speaks it. Every answer that is not positive
        evidence of a modern server is False, for ``initialize`` to try: a JSON-RPC error, an HTTP
        error without one, a non-MCP body, no answer within ``DISCOVER_TIMEOUT_SECONDS``, a result
        naming no modern version. The one exception is the SDK's too: -32022 naming only versions of
        neither era we speak (a modern-only server we share no version with). Transport failures
        (unreachable, 401/403, too large, denied) are the server's answer for either era: raised."""
        self.protocol_version = MODERN_PROTOCOL_VERSION  # the probe goes out in that era's format
        try:
            result = await self._request(
                "server/discover", {}, timeout=min(self.timeout, DISCOVER_TIMEOUT_SECONDS)
            )
        except UpstreamRpcError as exc:
            supported = exc.data.get("supported") if isinstance(exc.data, dict) else None
            if (
                exc.rpc_code == UNSUPPORTED_PROTOCOL_VERSION
                and isinstance(supported, list)
                and not any(v in supported for v in (*MODERN_PROTOCOL_VERSIONS, *SUPPORTED_PROTOCOL_VERSIONS))
            ):
                self.protocol_version = None
                named = ", ".join(str(v)[:40] for v in supported[:5])
                raise NotAnMcpServer(
                    f"the server speaks only MCP {named}; gatehouse speaks "
                    f"{', '.join((*MODERN_PROTOCOL_VERSIONS, *SUPPORTED_PROTOCOL_VERSIONS))}"
                ) from None
            result = None
        except (NotAnMcpServer, UpstreamTimeout):
            result = None
        except BaseException:
            self.protocol_version = None
            raise
        versions = result.get("supportedVersions") if result is not None else None
        if not isinstance(versions, list) or MODERN_PROTOCOL_VERSION not in versions:
            self.protocol_version = None
            return False
        meta = result.get("_meta") if result is not None else None
        info = meta.get(META_SERVER_INFO) if isinstance(meta, dict) else None
        self.server_info = info if isinstance(info, dict) else {}
        return True

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.protocol_version is None:
            raise RuntimeError("open() first")
        return await self._request(method, params)

    async def list_tools(self, *, max_tools: int, max_pages: int = 1000) -> list[Any]:
        """Every page of ``tools/list``; stops early (returning what it has) past ``max_tools``.
        2026-07-28's cache hints (``ttlMs``, ``cacheScope``) are not used: the tools are listed again
        when the target is synchronized. In that era a ``nextCursor`` of ``""`` is a cursor too."""
        tools: list[Any] = []
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.request("tools/list", {"cursor": cursor} if cursor is not None else {})
            batch = page.get("tools")
            if not isinstance(batch, list):
                raise NotAnMcpServer('the tools/list answer has no "tools" list')
            tools.extend(batch)
            cursor = page.get("nextCursor")
            if not isinstance(cursor, str) or not (cursor or self.modern) or len(tools) > max_tools:
                return tools
        raise NotAnMcpServer(f"tools/list did not end after {max_pages} pages")

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        meta: dict[str, Any] | None = None,
        options: CallOptions = NO_OPTIONS,
    ) -> ToolResult:
        """Call a tool; see ``CallOptions`` for progress, capabilities and an MRTR retry. Cancelling
        the calling task cancels the call at the server."""
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        progress: tuple[Any, ProgressCallback] | None = None
        if options.on_progress is not None:
            meta = dict(meta or {})
            token = meta.setdefault("progressToken", f"gatehouse-{uuid.uuid4().hex}")
            progress = (token, options.on_progress)
        if tracing.traced():  # the target's spans continue ours (not the client's, which we replace)
            meta = dict(meta or {})
            tracing.inject(meta)
        if meta:
            params["_meta"] = meta
        if options.input_responses is not None:
            params["inputResponses"] = options.input_responses
        if options.request_state is not None:
            params["requestState"] = options.request_state
        if self.protocol_version is None:
            raise RuntimeError("open() first")
        reply, msg_id = await self._exchange("tools/call", params, progress, options)
        if reply.messages is None:
            return _raw_result(reply, msg_id)
        answer = self._answer(reply, msg_id)  # an SSE stream: its messages are decoded anyway
        if answer.get("resultType") == "input_required":
            return _input_required(msgspec.json.encode(answer))
        return ToolResult(msgspec.json.encode(answer), bool(answer.get("isError")))

    async def close(self) -> None:
        """End the session at the server (DELETE); failures are ignored, the session is gone for us.
        A 2026-07-28 session has nothing to end."""
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

    def _check_endpoint(self) -> None:
        try:  # a literal address; host names are checked each time they resolve
            self._http.guard.check_url(self.endpoint)
        except EndpointDenied as exc:
            raise EndpointNotAllowed(str(exc)) from None

    def _session_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    def _modern_message(
        self, version: str, method: str, params: dict[str, Any] | None, options: CallOptions
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """A 2026-07-28 request's params (the envelope in ``_meta``, over any keys of the caller's
        of the same names) and its headers (the mirrored ones, ``Mcp-Param-*`` included)."""
        params = dict(params or {})
        params["_meta"] = {
            **(params.get("_meta") or {}),
            META_PROTOCOL_VERSION: version,
            META_CLIENT_CAPABILITIES: options.client_capabilities or {},
            META_CLIENT_INFO: CLIENT_INFO,
        }
        headers = dict(self._headers)
        headers["MCP-Protocol-Version"] = version
        headers["Mcp-Method"] = method
        if (key := _NAMED.get(method)) is not None and isinstance(value := params.get(key), str):
            headers["Mcp-Name"] = encode_header_value(value)
        if options.header_map:
            headers.update(param_headers(options.header_map, params.get("arguments")))
        return params, headers

    async def _request(
        self, method: str, params: dict[str, Any] | None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        return self._answer(*await self._exchange(method, params, timeout=timeout))

    async def _exchange(
        self,
        method: str,
        params: dict[str, Any] | None,
        progress: tuple[Any, ProgressCallback] | None = None,
        options: CallOptions = NO_OPTIONS,
        *,
        timeout: float | None = None,
    ) -> tuple[_Reply, int]:
        """Send one request; the raw answer and the request's id. A request given up (the caller
        cancelled, or no answer in time) is cancelled at the server: closing the stream does that
        in 2026-07-28; in the handshake era ``notifications/cancelled`` says so as well (2025-11-25
        does not take a closed stream for a cancellation; ``initialize`` is never cancelled)."""
        msg_id = next(self._ids)
        if self.protocol_version in MODERN_PROTOCOL_VERSIONS:
            params, headers = self._modern_message(self.protocol_version, method, params, options)
        else:
            headers = self._session_headers()
        if tracing.traced():
            tracing.inject(headers)
        try:
            reply = await self._send(jsonrpc.request(msg_id, method, params), headers, progress, timeout)
        except (asyncio.CancelledError, UpstreamTimeout):
            if self.session_id is not None and method != "initialize":
                self._cancel_later(msg_id)
            raise
        return reply, msg_id

    def _cancel_later(self, msg_id: int) -> None:
        """Send ``notifications/cancelled`` for ``msg_id`` in the background (the caller is being
        cancelled, and must not wait for it); failures are ignored, as for any notification."""

        async def send() -> None:
            body = jsonrpc.notification(
                "notifications/cancelled", {"requestId": msg_id, "reason": "cancelled"}
            )
            try:
                await self._send(body, self._session_headers(), None, CANCEL_TIMEOUT_SECONDS)
            except McpClientError:
                pass

        self._spawn(send())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)  # (the loop keeps only a weak reference to a task)
        task.add_done_callback(self._background.discard)

    def retire(self) -> None:
        """Close the session once the requests in flight are answered (at once if none is): a pool
        that drops a session (its target changed) must not cut the calls it is carrying."""
        self._retired = True
        if self.in_flight == 0:
            self._spawn(self.close())

    async def _notify(self, method: str) -> None:
        reply = await self._send(jsonrpc.notification(method), self._session_headers())
        if reply.status >= 400:
            raise NotAnMcpServer(f"the server answered HTTP {reply.status}")

    async def _send(
        self,
        body: bytes,
        headers: dict[str, str],
        progress: tuple[Any, ProgressCallback] | None = None,
        timeout: float | None = None,
    ) -> _Reply:
        """POST one message; transport faults and HTTP refusals become our errors. An SSE answer is
        read as it arrives (its progress notifications go to ``progress``' callback at once). Leaving
        early, for whatever reason, closes the connection: the server sees the stream close."""
        self.in_flight += 1
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                async with self._http.session().post(
                    self.endpoint, data=body, headers=headers, allow_redirects=False
                ) as response:
                    try:
                        if response.content_type.lower() == "text/event-stream":
                            messages = await _read_sse(response, self._http.max_response_bytes, progress)
                            reply = _Reply(response.status, response.content_type, b"", messages)
                        else:
                            content = await _read(response, self._http.max_response_bytes)
                            reply = _Reply(response.status, response.content_type, content)
                    except BaseException:
                        response.close()
                        raise
                    sid = response.headers.get("mcp-session-id")
        except _CallbackFailed as exc:  # the call is given up (its stream closed): the caller's error
            raise exc.error from None
        except TimeoutError:
            raise UpstreamTimeout(f"no answer within {limit:g}s") from None
        except (aiohttp.ClientError, ValueError) as exc:
            if (denied := denial(exc)) is not None:
                raise EndpointNotAllowed(str(denied)) from None
            raise UpstreamUnreachable(f"cannot connect ({type(exc).__name__})") from None
        finally:
            self.in_flight -= 1
            if self._retired and self.in_flight == 0:
                self._spawn(self.close())
        if reply.status in (401, 403):
            raise UpstreamUnauthorized(f"the server refused the credentials (HTTP {reply.status})")
        if reply.status == 404 and self.session_id:
            raise UpstreamSessionLost("the server no longer knows our session")
        if sid and not self.modern:
            self.session_id = sid
        return reply

    def _answer(self, reply: _Reply, msg_id: int) -> dict[str, Any]:
        ctype = reply.content_type.lower()
        if reply.messages is not None:
            candidates = reply.messages
        elif ctype == "application/json":
            try:
                candidates = [_decode(reply.body)]
            except (msgspec.DecodeError, RecursionError):
                raise NotAnMcpServer("the server sent invalid (or too deeply nested) JSON") from None
        else:
            has = "no content type" if ctype in ("", "application/octet-stream") else ctype
            raise NotAnMcpServer(f"the server answered HTTP {reply.status} with {has}, not MCP")
        for msg in candidates:
            if (
                isinstance(msg, dict)
                and _answers(msg.get("id"), msg_id, reply)
                and msg.get("jsonrpc") == "2.0"
            ):
                if isinstance(err := msg.get("error"), dict):
                    raise _rpc_error(err)
                if isinstance(res := msg.get("result"), dict):
                    return res
                raise NotAnMcpServer("the server's JSON-RPC answer has no result object")
        raise _no_response(reply)


def _answers(answer_id: Any, msg_id: int, reply: _Reply) -> bool:
    """Whether a message is the answer to our request: its id, or, on an HTTP error, no id (a
    2026-07-28 server refuses a request it could not read that far with ``"id": null``)."""
    return answer_id == msg_id or (answer_id is None and reply.status >= 400)


def _input_required(raw: bytes) -> ToolResult:
    """A tools/call's ``input_required`` answer, typed, with the result a client that cannot take
    one gets instead: an error result saying what the target asked for and why it cannot be given."""
    try:
        answer = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        raise NotAnMcpServer("the server sent invalid (or too deeply nested) JSON") from None
    if not isinstance(answer, dict):
        raise NotAnMcpServer("the server's JSON-RPC answer has no result object")
    requests, state = answer.get("inputRequests", {}), answer.get("requestState")
    if (
        not isinstance(requests, dict)
        or not isinstance(state, str | None)
        or (not requests and state is None)
    ):
        raise NotAnMcpServer("the server's input_required answer has neither inputRequests nor requestState")
    asked = sorted({str(r.get("method")) for r in requests.values() if isinstance(r, dict)}) or ["a retry"]
    text = (
        f"The target needs more input before this tool call can finish (it asked for: {', '.join(asked)}). "
        "Only an MCP 2026-07-28 client can answer such a request (multi round-trip requests), and this "
        "call cannot: connect with a client that speaks MCP 2026-07-28 to use this tool."
    )
    fallback = {"content": [{"type": "text", "text": text}], "isError": True}
    return ToolResult(msgspec.json.encode(fallback), True, InputRequired(raw, requests, state))


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, but no more than ``limit`` bytes of it: a longer answer is refused at once (a
    declared length) or as soon as it passes the limit (chunked, SSE), the rest left unread."""
    declared = response.content_length
    if declared is not None:  # aiohttp reads no more than the declared length
        if declared > limit:
            raise UpstreamTooLarge(f"the answer is larger than {limit} bytes")
        return await response.read()
    return b"".join([chunk async for chunk in _chunks(response, limit)])


async def _chunks(response: aiohttp.ClientResponse, limit: int) -> AsyncIterator[bytes]:
    """The body's pieces as they arrive, refused as soon as they pass ``limit`` bytes."""
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise UpstreamTooLarge(f"the answer is larger than {limit} bytes")
        yield chunk


async def _read_sse(
    response: aiohttp.ClientResponse, limit: int, progress: tuple[Any, ProgressCallback] | None
) -> list[Any]:
    """The messages of an SSE answer, read as they arrive and no more than ``limit`` bytes of them;
    each progress notification for ``progress``' token goes to its callback as soon as it is read."""
    parser = _SseParser()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    messages: list[Any] = []
    async for chunk in _chunks(response, limit):
        batch = parser.feed(decoder.decode(chunk))
        if progress is not None:
            await _report(batch, progress)
        messages += batch
    batch = parser.feed(decoder.decode(b"", final=True)) + parser.close()
    if progress is not None:
        await _report(batch, progress)
    return messages + batch


class _CallbackFailed(Exception):
    """The caller's progress callback raised ``error``: not a transport fault, raised as it is."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error


async def _report(messages: list[Any], progress: tuple[Any, ProgressCallback]) -> None:
    token, callback = progress
    for msg in messages:
        if isinstance(msg, dict) and msg.get("method") == "notifications/progress":
            params = msg.get("params")
            if isinstance(params, dict) and params.get("progressToken") == token:
                try:
                    await callback(params)
                except Exception as exc:
                    raise _CallbackFailed(exc) from None


def _raw_result(reply: _Reply, msg_id: int) -> ToolResult:
    """The result of a JSON answer without decoding it (its syntax and UTF-8 are still checked)."""
    try:
        answer = msgspec.json.decode(reply.body, type=_Envelope)
        raw = bytes(answer.result)
        raw.decode("utf-8")
        flags = msgspec.json.decode(raw, type=_Flags) if raw.startswith(b"{") else None
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
        raise NotAnMcpServer("the server sent invalid (or too deeply nested) JSON") from None
    if answer.jsonrpc != "2.0" or not _answers(answer.id, msg_id, reply):
        raise _no_response(reply)
    if isinstance(err := answer.error, dict):
        raise _rpc_error(err)
    if flags is None:
        raise NotAnMcpServer("the server's JSON-RPC answer has no result object")
    if flags.resultType == "input_required":
        return _input_required(raw)
    return ToolResult(raw, bool(flags.isError))


def _rpc_error(err: dict[str, Any]) -> McpClientError:
    """The server's JSON-RPC error, kept as it is only when well formed (an integer code, a string
    message): anything else is the server's fault, not an error to pass on."""
    code, message = err.get("code"), err.get("message", "")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
        return NotAnMcpServer(
            "the server sent a malformed JSON-RPC error (its code must be an integer, its message a string)"
        )
    if code == URL_ELICITATION_REQUIRED:
        return UpstreamUrlElicitationRequired(code, message, err.get("data"))
    return UpstreamRpcError(code, message, err.get("data"))


def _no_response(reply: _Reply) -> NotAnMcpServer:
    """An answer without the JSON-RPC response to our request."""
    if reply.status >= 400:
        return NotAnMcpServer(f"the server answered HTTP {reply.status}")
    return NotAnMcpServer("the server's answer carries no JSON-RPC response to our request")
