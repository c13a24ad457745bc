"""The MCP endpoint for protocol 2026-07-28: stateless, one POST per request, consent by MRTR.

``McpEndpoint.handle`` routes here every request whose ``MCP-Protocol-Version`` is not absent or of
the handshake era (the SDK's dual-era server routes the same way), after the gateway, Origin and the
caller's token were checked: every request is authenticated on its own, and what is kept per user
(tokens, consent waits) is keyed by the token's principal.

Order of checks: POST, version (400 -32022), Content-Type, Accept, body size, JSON-RPC shape, the
``_meta`` envelope (400 -32602), the mirrored headers (400 -32020), the method (404 -32601). Every
result carries ``resultType`` and ``_meta`` serverInfo; -32042 is never sent (a consent is an
``input_required`` result, see ``_tools_call``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.errors import Forbidden, PayloadTooLarge
from gatehouse_contracts.events import ToolInvoked, ToolOutcome, new_event
from gatehouse_contracts.http import read_body
from gatehouse_contracts.jsonrpc import JsonRpcError
from gatehouse_contracts.mcp_client import (
    NO_OPTIONS,
    CallOptions,
    ProgressCallback,
    UpstreamUrlElicitationRequired,
    is_modern,
)

from . import call_errors, tool_search
from .call_stream import SSE_HEADERS, Answer, CallStream, disconnected, send_json, sse_event, unless
from .catalog import GatewayCatalog, RoutedTarget
from .elicitation import consent_message, tool_call
from .json_parts import JsonParts
from .modern_rules import (
    ENVELOPE_PREFIX,
    MODERN_VERSION,
    SERVER_INFO_KEY,
    Envelope,
    ModernError,
    check_headers,
    check_param_headers,
    envelope,
    mcp_headers,
    unsupported_version,
)
from .request_state import MAX_UPSTREAM_LENGTH, ConsentState, RequestStates
from .telemetry import JSONRPC_ERROR, seen
from .user_auth import AuthorizationRequired, ConsentEnded, User
from .waiters import Waiters

if TYPE_CHECKING:
    from .mcp_endpoint import McpEndpoint

JSON = "application/json"
CONSENT_INPUT = "gatehouse/consent"  # our key in inputRequests / inputResponses
KNOWN_METHODS = frozenset({"server/discover", "tools/list", "tools/call", "subscriptions/listen"})
SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, kw_only=True)
class ModernConfig:
    ttl_ms: int  # tools/list and server/discover freshness hint (docs/mcp-clients.md says why)
    consent_wait: float  # seconds a retried call waits for the user to finish consenting
    keepalive: float  # seconds between SSE comment lines while it waits
    request_state_seconds: float = 900.0


@dataclass(slots=True)  # (not frozen: a frozen dataclass costs a µs more per call to build)
class Call:
    """One modern tools/call, checked: what to call, with what, for whom."""

    id: jsonrpc.RequestId
    cat: GatewayCatalog
    target: RoutedTarget
    tool: str
    name: str  # as the client named it (prefixed)
    arguments: dict[str, Any]
    meta: dict[str, Any] | None
    override: dict[str, Any]
    env: Envelope
    user: User | None

    @property
    def principal(self) -> str:
        return self.user.key if self.user else ""


class ModernEndpoint:
    def __init__(
        self, legacy: McpEndpoint, server_info: dict[str, str], waiters: Waiters, config: ModernConfig
    ) -> None:
        self.legacy = legacy
        self.waiters = waiters
        self.config = config
        self.states = RequestStates(legacy.secret, config.request_state_seconds)
        self.meta = {SERVER_INFO_KEY: server_info}
        # every complete result starts with these bytes (then its own fields)
        self.complete_head = b'{"resultType":"complete","_meta":' + _encoder.encode(self.meta)

    # -- HTTP ------------------------------------------------------------------------------

    async def handle(
        self, request: Request, cat: GatewayCatalog, user: User | None, version: str
    ) -> Response:
        msg_id: jsonrpc.RequestId | None = None
        try:
            if request.method != "POST":
                return Response(status_code=405, headers={"Allow": "POST"})
            if version != MODERN_VERSION:
                raise unsupported_version(
                    version, cat.gateway["protocolConfiguration"]["mcp"]["supportedVersions"]
                )
            body = await self._body(request)
            msg = jsonrpc.parse_message(body)
            if not isinstance(msg, jsonrpc.Request):
                if isinstance(msg, jsonrpc.Response):
                    raise ModernError(
                        400, jsonrpc.INVALID_REQUEST, "Invalid Request: clients send no responses"
                    )
                return Response(status_code=202)  # no notification is defined on this wire: dropped
            msg_id = msg.id
            env = envelope(msg.params)
            headers = mcp_headers(request.scope["headers"])
            check_headers(headers, env, msg.method, msg.params)
            if msg.method not in KNOWN_METHODS:
                raise ModernError(404, jsonrpc.METHOD_NOT_FOUND, f"Method not found: {msg.method[:100]}")
            seen(request.scope, msg.method, msg.params)  # its metrics' label, its span
            if msg.method == "tools/list":
                return self._tools_list(msg, cat)
            if msg.method == "server/discover":
                return self._reply(msg.id, self._discover(cat))
            if msg.method == "subscriptions/listen":
                return self._listen(msg, cat, request)
            return await self._tools_call(msg, cat, env, user, headers, request)
        except ModernError as exc:
            request.scope[JSONRPC_ERROR] = True
            return _error(msg_id, exc.status, exc.code, exc.message, exc.data)
        except JsonRpcError as exc:
            request.scope[JSONRPC_ERROR] = True
            return _error(
                exc.id if msg_id is None else msg_id, _status(exc.code), exc.code, exc.message, exc.data
            )

    async def _body(self, request: Request) -> bytes:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != JSON:
            raise ModernError(
                415, jsonrpc.INVALID_REQUEST, "Unsupported Media Type: send Content-Type: application/json"
            )
        accept = request.headers.get("accept")
        if accept is not None and not (JSON in accept or "*/*" in accept or "application/*" in accept):
            raise ModernError(
                406, jsonrpc.INVALID_REQUEST, "Not Acceptable: the client must accept application/json"
            )
        try:
            return await read_body(request, self.legacy.max_body_bytes)
        except PayloadTooLarge as exc:
            raise ModernError(413, jsonrpc.INVALID_REQUEST, f"Payload Too Large: {exc.message}") from None

    def _reply(self, msg_id: jsonrpc.RequestId, result: bytes) -> Response:
        return JsonParts([jsonrpc.raw_result(msg_id, result)])

    # -- server/discover and tools/list --------------------------------------------------------

    def cache_hints(self, cat: GatewayCatalog) -> bytes:
        """``"ttlMs":…,"cacheScope":…``: every user of a gateway sees the same list, but a gateway
        that checks its callers' tokens must not have it shared past them (docs/mcp-clients.md)."""
        scope = "public" if cat.gateway["authorizerType"] == "NONE" else "private"
        return b'"ttlMs":%d,"cacheScope":"%s"' % (self.config.ttl_ms, scope.encode())

    def _discover(self, cat: GatewayCatalog) -> bytes:
        mcp = cat.gateway["protocolConfiguration"]["mcp"]
        fields: dict[str, Any] = {
            "supportedVersions": [MODERN_VERSION, *mcp["supportedVersions"]],
            "capabilities": {"tools": {"listChanged": True}},  # subscriptions/listen
        }
        if instructions := mcp.get("instructions"):
            fields["instructions"] = instructions
        return self.complete_head + b"," + self.cache_hints(cat) + b"," + _encoder.encode(fields)[1:]

    def _tools_list(self, msg: jsonrpc.Request, cat: GatewayCatalog) -> Response:
        cursor = msg.params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise JsonRpcError(jsonrpc.INVALID_PARAMS, "Invalid params: cursor must be a string")
        try:
            # "" is a cursor like any other to a client; here it names the start of the list
            answer = cat.modern_answer(
                cursor or None, self.legacy.page_size, self.legacy.cursors, self._list_head
            )
        except ValueError:
            raise JsonRpcError(
                jsonrpc.INVALID_PARAMS,
                "Invalid params: unknown cursor (use the nextCursor of this gateway's last tools/list page)",
            ) from None
        return JsonParts([answer, _encoder.encode(msg.id) + b"}"])

    def _listen(self, msg: jsonrpc.Request, cat: GatewayCatalog, request: Request) -> Response:
        """``subscriptions/listen``: an SSE stream of ``notifications/tools/list_changed`` for this
        gateway (the only change it has). Other types asked for are left out of the acknowledgment."""
        if "text/event-stream" not in request.headers.get("accept", ""):
            raise ModernError(
                406, jsonrpc.INVALID_REQUEST, "Not Acceptable: subscriptions/listen answers text/event-stream"
            )
        wanted = msg.params.get("notifications")
        if wanted is not None and not isinstance(wanted, dict):
            raise JsonRpcError(jsonrpc.INVALID_PARAMS, "Invalid params: notifications must be an object")
        honored = {"toolsListChanged": True} if (wanted or {}).get("toolsListChanged") is True else {}
        return Listen(self, cat.gateway["_id"], msg.id, honored)

    def _list_head(self, cat: GatewayCatalog) -> bytes:
        return self.complete_head[1:] + b"," + self.cache_hints(cat)

    # -- tools/call ------------------------------------------------------------------------

    async def _tools_call(
        self,
        msg: jsonrpc.Request,
        cat: GatewayCatalog,
        env: Envelope,
        user: User | None,
        headers: Mapping[str, str],
        request: Request,
    ) -> Response:
        params = msg.params
        if cat.searchable and params.get("name") == tool_search.NAME:
            found = await tool_search.call(cat.search, params.get("arguments", {}), self.legacy.semantic)
            return self._reply(msg.id, self._complete(found))
        meta = {k: v for k, v in params["_meta"].items() if not k.startswith(ENVELOPE_PREFIX)}
        name, arguments, meta_fwd, override, target, tool = tool_call(params, meta, cat)
        if (params_map := target.header_maps.get(tool)) is not None:
            check_param_headers(params_map, arguments, headers)
        call = Call(msg.id, cat, target, tool, name, arguments, meta_fwd, override, env, user)
        # progress goes to a client that sent a token and takes an SSE answer (call_stream)
        sse = "text/event-stream" in request.headers.get("accept", "")
        token = meta_fwd.get("progressToken") if sse and meta_fwd is not None else None
        if "requestState" not in params:
            return CallStream(partial(self._answered, call), token, cancel_on_disconnect=True)
        state = self.states.open(
            params["requestState"],
            gateway=cat.gateway["_id"],
            principal=call.principal,
            method=msg.method,
            tool=name,
            arguments=arguments,
        )
        responses = params.get("inputResponses")
        if responses is not None and not isinstance(responses, dict):
            raise JsonRpcError(jsonrpc.INVALID_PARAMS, "Invalid params: inputResponses must be an object")
        if state.target_asked:
            return self._target_retry(call, state, responses, token)
        answer = (responses or {}).get(CONSENT_INPUT)
        action = answer.get("action") if isinstance(answer, dict) else None
        if action in ("decline", "cancel"):
            self._audit(call, "authorization_required", time.perf_counter())
            text = f"The user did not authorize {call.target.name!r} ({action}); the tool was not called."
            return self._reply(msg.id, self._not_called(text))
        if action != "accept":  # the answer is missing: ask again (patterns/mrtr, "Error Handling")
            return self._reply(msg.id, self._ask(call, state.session, state.url))
        return ConsentRetry(self, call, state, sse)

    def _target_retry(
        self, call: Call, state: ConsentState, responses: dict[str, Any] | None, token: Any
    ) -> Response:
        """The retry of a call whose target asked for input: the client's answers and the target's
        own ``requestState`` go to the target. A handshake-era target (its -32042 was passed on as
        URL input requests) is simply called again once the user accepted; a decline ends it here."""
        upstream = state.upstream
        if not is_modern(call.target.protocol_version):
            declined = [
                a.get("action")
                for a in (responses or {}).values()
                if isinstance(a, dict) and a.get("action") in ("decline", "cancel")
            ]
            if declined:
                self._audit(call, "tool_error", time.perf_counter())
                text = f"The user did not complete what {call.target.name!r} asked ({declined[0]}); "
                return self._reply(call.id, self._not_called(text + "the tool was not called."))
            responses, upstream = None, None
        retry = partial(self._answered, call, responses=responses, upstream_state=upstream)
        return CallStream(retry, token, cancel_on_disconnect=True)

    def _not_called(self, text: str) -> bytes:
        return self._result({"content": [{"type": "text", "text": text}], "isError": True})

    def _result(self, fields: dict[str, Any]) -> bytes:
        return self.complete_head + b"," + _encoder.encode(fields)[1:]

    def _complete(self, raw: bytes) -> bytes:
        """The target's result object as a 2026-07-28 result: resultType and our serverInfo added,
        its bytes copied once, decoded only when it has a ``_meta`` or ``resultType`` of its own."""
        raw = raw.strip()
        if b'"_meta"' in raw or b'"resultType"' in raw:
            doc = msgspec.json.decode(raw)
            own = doc.get("_meta") if isinstance(doc.get("_meta"), dict) else {}
            doc["_meta"] = {**own, **self.meta}
            doc.setdefault("resultType", "complete")
            return _encoder.encode(doc)
        if raw[1:].lstrip() == b"}":
            return self.complete_head + b"}"
        return self.complete_head + b"," + raw[1:]

    def _ask(self, call: Call, session: str, url: str) -> bytes:
        """The ``input_required`` result: open ``url`` (identity's consent), then retry."""
        request = {
            "method": "elicitation/create",
            "params": {"mode": "url", "message": consent_message(call.target.name), "url": url},
        }
        return self._input_required(call, {CONSENT_INPUT: request}, session=session, url=url)

    def _input_required(self, call: Call, requests: dict[str, Any], **state: Any) -> bytes:
        """An ``input_required`` result asking ``requests``, with a sealed ``requestState`` bound to
        this call and holding ``state`` (``request_state.RequestStates.new``)."""
        sealed = self.states.new(
            gateway=call.cat.gateway["_id"],
            principal=call.principal,
            method="tools/call",
            tool=call.name,
            arguments=call.arguments,
            **state,
        )
        return _encoder.encode(
            {
                "resultType": "input_required",
                "inputRequests": requests,
                "requestState": sealed,
                "_meta": self.meta,
            }
        )

    async def _answered(
        self,
        call: Call,
        on_progress: ProgressCallback | None,
        *,
        responses: dict[str, Any] | None = None,
        upstream_state: str | None = None,
    ) -> Answer:
        """``_run``'s outcome as (HTTP status, JSON-RPC message), errors included (``CallStream``)."""
        answer = await self.answer(
            call, self._run(call, on_progress, responses=responses, upstream_state=upstream_state)
        )
        return answer or (200, b"")  # (_run always has an answer)

    async def _run(
        self,
        call: Call,
        on_progress: ProgressCallback | None = None,
        *,
        responses: dict[str, Any] | None = None,
        upstream_state: str | None = None,
    ) -> bytes:
        """Call the tool: its result; ``input_required`` when the user must consent first, or when
        the target asks for input (passed on: ``_pass_on``). The client's capabilities go to the
        target, since what the target asks for goes to the client."""
        started = time.perf_counter()
        outcome: ToolOutcome = "success"
        options = NO_OPTIONS  # (the common call: nothing to pass, nothing built)
        if on_progress is not None or call.env.capabilities or responses or upstream_state:
            options = CallOptions(on_progress, call.env.capabilities, responses, upstream_state)
        meta = call.meta if on_progress is None else without_token(call.meta)
        try:
            result = await self.legacy._call(
                call.target, call.tool, call.arguments, meta, call.user, call.override, options
            )
            if (asked := result.input_required) is not None:
                return self._pass_on(call, asked.input_requests, asked.request_state)
            if result.is_error:
                outcome = "tool_error"
            return self._complete(result.raw)
        except UpstreamUrlElicitationRequired as exc:
            # a handshake-era target's -32042: URL input requests (this era never sends -32042)
            outcome = "tool_error"
            if not call.env.url_elicitation:
                raise _missing_url_elicitation(f"{call.target.name!r} asks the user to open a URL") from None
            if not exc.elicitations:
                text = f"Target {call.target.name!r} asked for a URL it did not give: {exc.message}"
                return self._not_called(text)
            return self._pass_on(call, url_requests(exc.elicitations), None)
        except AuthorizationRequired as exc:
            outcome = "authorization_required"
            if not call.env.url_elicitation:
                raise _missing_url_elicitation(
                    f"the user must authorize {call.target.name!r} in a browser first"
                ) from None
            return self._ask(call, exc.session_uri, exc.url)
        except call_errors.CAUGHT as exc:
            outcome, error = call_errors.translate(exc, call.target.name)
            raise error from None
        except asyncio.CancelledError:
            outcome = "upstream_error"
            raise
        finally:
            self._audit(call, outcome, started)

    def _pass_on(self, call: Call, requests: dict[str, Any], upstream: str | None) -> bytes:
        """The target's request for input, as our ``input_required``: its ``inputRequests`` as
        they are, its ``requestState`` sealed inside ours (bound to this user and call)."""
        if upstream is not None and len(upstream) > MAX_UPSTREAM_LENGTH:
            raise JsonRpcError(
                call_errors.UPSTREAM_ERROR,
                f"Target {call.target.name!r} failed: its requestState is longer than {MAX_UPSTREAM_LENGTH}",
                {"target": call.target.name},
            )
        return self._input_required(call, requests, target_asked=True, upstream=upstream)

    def _audit(self, call: Call, outcome: ToolOutcome, started: float) -> None:
        self.legacy.on_tool_invoked(
            new_event(
                ToolInvoked,
                source="gateway",
                gateway_id=call.cat.gateway["_id"],
                target_id=call.target.target_id,
                tool=call.tool,
                user=call.principal,
                outcome=outcome,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        )

    async def settle(self, call: Call, consent: ConsentState) -> bytes | None:
        """After the user said ``accept``: the answer, or None while the person is still consenting."""
        if call.user is not None and call.target.user_auth:
            try:
                await self.legacy.user_tokens.token_for(call.target, call.user, session_uri=consent.session)
            except AuthorizationRequired as exc:
                if exc.session_uri == consent.session:
                    return None
            except (ConsentEnded, Forbidden):
                pass  # refused, expired or ended: the call below asks for a new consent
            except call_errors.CAUGHT as exc:
                raise call_errors.translate(exc, call.target.name)[1] from None
        return await self._run(call)

    async def answer(self, call: Call, work: Awaitable[bytes | None]) -> Answer | None:
        """(HTTP status, the JSON-RPC message) for the outcome of ``work`` (None for None)."""
        try:
            result = await work
            return None if result is None else (200, jsonrpc.raw_result(call.id, result))
        except ModernError as exc:
            return exc.status, jsonrpc.error(call.id, exc.code, exc.message, exc.data)
        except JsonRpcError as exc:
            return _status(exc.code), jsonrpc.error(call.id, exc.code, exc.message, exc.data)


def _missing_url_elicitation(why: str) -> ModernError:
    return ModernError(
        400,
        jsonrpc.MISSING_REQUIRED_CLIENT_CAPABILITY,
        f"Missing required client capability: elicitation.url ({why})",
        {"requiredCapabilities": {"elicitation": {"url": {}}}},
    )


def url_requests(elicitations: list[dict[str, Any]]) -> dict[str, Any]:
    """A handshake-era target's -32042 elicitations as 2026-07-28 URL input requests, keyed by their
    ``elicitationId`` (or their place)."""
    requests: dict[str, Any] = {}
    for i, found in enumerate(elicitations):
        key = found.get("elicitationId")
        params = {"mode": "url", "message": str(found.get("message", "")), "url": found["url"]}
        if isinstance(key, str):
            params["elicitationId"] = key
        requests[key if isinstance(key, str) else f"url-{i + 1}"] = {
            "method": "elicitation/create",
            "params": params,
        }
    return requests


def without_token(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``_meta`` to forward when the gateway reports the progress: without the client's token
    (the target gets a token of the gateway's, unique among all its callers' calls)."""
    if meta is None or "progressToken" not in meta:
        return meta
    return {k: v for k, v in meta.items() if k != "progressToken"} or None


class ConsentRetry(Response):
    """The answer to a call retried with ``accept``: at once if the consent is settled, else after
    ``identity.token_issued`` (or ``authorization_failed``) for its session. While waiting it streams
    SSE comment lines (when the client accepts SSE) so no proxy or client gives up on a quiet line;
    a client that disconnects cancels the wait; after ``consent_wait`` seconds the user is asked
    again (same URL, a new requestState)."""

    def __init__(self, endpoint: ModernEndpoint, call: Call, consent: ConsentState, sse: bool) -> None:
        self.endpoint, self.call, self.consent, self.sse = endpoint, call, consent, sse
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ep, call = self.endpoint, self.call
        with ep.waiters.waiting(self.consent.session) as settled:
            now = await ep.answer(call, ep.settle(call, self.consent))
            if now is not None:
                await send_json(send, *now)
                return
            if self.sse:
                await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                await self._comment(send, b": waiting for the user's consent\n\n")
            gone = asyncio.ensure_future(disconnected(receive))
            try:
                if not await self._wait(settled, gone, send):
                    return  # the client left: nothing more is done for this call
                work = ep._run(call) if settled.is_set() else _asked_again(ep, call, self.consent)
                answer = await unless(ep.answer(call, work), gone)
                if answer is None:
                    return  # the client left while the tool ran
            finally:
                gone.cancel()
        status, body = answer
        if self.sse:
            await send({"type": "http.response.body", "body": sse_event(body)})
        else:
            await send_json(send, status, body)

    async def _wait(self, settled: asyncio.Event, gone: asyncio.Future[None], send: Send) -> bool:
        """Until the consent settled or ``consent_wait`` passed (True), or the client left (False)."""
        waited = asyncio.ensure_future(settled.wait())
        try:
            deadline = time.monotonic() + self.endpoint.config.consent_wait
            while (left := deadline - time.monotonic()) > 0:
                either: list[asyncio.Future[Any]] = [gone, waited]
                await asyncio.wait(
                    either,
                    timeout=min(self.endpoint.config.keepalive, left),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if gone.done():
                    return False
                if waited.done():
                    return True
                await self._comment(send, b": keep-alive\n\n")
            return True
        finally:
            waited.cancel()

    async def _comment(self, send: Send, line: bytes) -> None:
        if self.sse:
            await send({"type": "http.response.body", "body": line, "more_body": True})


class Listen(Response):
    """A ``subscriptions/listen`` stream (patterns/subscriptions): the acknowledgment first, then one
    ``notifications/tools/list_changed`` per change of the gateway's tools (changes that come while
    one is being sent make one more), SSE comment lines between; every message carries the
    subscription id (the request's id). It ends when the client closes it."""

    def __init__(
        self, endpoint: ModernEndpoint, gateway_id: str, msg_id: jsonrpc.RequestId, honored: dict[str, bool]
    ) -> None:
        self.endpoint, self.gateway_id, self.honored = endpoint, gateway_id, honored
        self.meta = {SUBSCRIPTION_ID_KEY: msg_id}
        self.background = None

    def _event(self, method: str, params: dict[str, Any]) -> bytes:
        return sse_event(jsonrpc.notification(method, {"_meta": self.meta, **params}))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ep = self.endpoint
        with ep.legacy.catalog.listeners.waiting(self.gateway_id) as changed:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            ack = self._event("notifications/subscriptions/acknowledged", {"notifications": self.honored})
            await send({"type": "http.response.body", "body": ack, "more_body": True})
            gone = asyncio.ensure_future(disconnected(receive))
            waited = asyncio.ensure_future(changed.wait())
            try:
                while True:
                    either: list[asyncio.Future[Any]] = [gone, waited]
                    await asyncio.wait(
                        either, timeout=ep.config.keepalive, return_when=asyncio.FIRST_COMPLETED
                    )
                    if gone.done():
                        return
                    body = b": keep-alive\n\n"
                    if waited.done():
                        changed.clear()
                        waited = asyncio.ensure_future(changed.wait())
                        if self.honored:
                            body = self._event("notifications/tools/list_changed", {})
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            finally:
                gone.cancel()
                waited.cancel()


async def _asked_again(ep: ModernEndpoint, call: Call, consent: ConsentState) -> bytes:
    return ep._ask(call, consent.session, consent.url)


def _status(code: int) -> int:
    """The HTTP status of a JSON-RPC error in this era (streamable-http "Server Validation")."""
    if code == jsonrpc.METHOD_NOT_FOUND:
        return 404
    if code in (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST, jsonrpc.INVALID_PARAMS):
        return 400
    return 200  # a tool's or target's failure is an answer, not a transport refusal


def _error(
    msg_id: jsonrpc.RequestId | None, status: int, code: int, message: str, data: Any = None
) -> Response:
    return Response(jsonrpc.error(msg_id, code, message, data), status, media_type=JSON)
