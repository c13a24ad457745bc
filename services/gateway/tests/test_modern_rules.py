"""The pure rules of MCP 2026-07-28 (modern_rules.py) and the sealed requestState (request_state.py)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from gatehouse_contracts.jsonrpc import JsonRpcError
from gatehouse_contracts.mcp_client import HeaderMap
from gatehouse_contracts.tools import header_map
from gatehouse_gateway.call_stream import CallStream
from gatehouse_gateway.modern import ConsentRetry, ModernConfig, url_requests, without_token
from gatehouse_gateway.modern_rules import (
    Envelope,
    ModernError,
    check_headers,
    check_param_headers,
    decode_value,
    envelope,
    is_legacy,
    mcp_headers,
    unsupported_version,
)
from gatehouse_gateway.request_state import ConsentState, RequestStates
from gatehouse_gateway.waiters import Waiters

V = "io.modelcontextprotocol/protocolVersion"
C = "io.modelcontextprotocol/clientCapabilities"


def _b64(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


def _code(exc: pytest.ExceptionInfo[ModernError]) -> tuple[int, int]:
    return exc.value.status, exc.value.code


def test_era_routing() -> None:
    assert is_legacy(None) and is_legacy("2025-11-25") and is_legacy("2024-11-05")
    assert not is_legacy("2026-07-28") and not is_legacy("2099-01-01")
    err = unsupported_version("2099-01-01", ["2025-11-25", "2025-06-18"])
    assert (err.status, err.code) == (400, -32022)
    assert err.data == {"supported": ["2026-07-28", "2025-11-25", "2025-06-18"], "requested": "2099-01-01"}


@pytest.mark.parametrize(
    "params",
    [{}, {"_meta": []}, {"_meta": {V: "2026-07-28"}}, {"_meta": {C: {}}}, {"_meta": {V: 1, C: {}}}],
)
def test_the_envelope_is_required(params: dict[str, Any]) -> None:
    with pytest.raises(ModernError) as exc:
        envelope(params)
    assert _code(exc) == (400, -32602)


def test_url_elicitation_is_read_from_the_capabilities() -> None:
    assert envelope({"_meta": {V: "2026-07-28", C: {"elicitation": {"url": {}}}}}).url_elicitation
    for caps in ({}, {"elicitation": {}}, {"elicitation": {"form": {}}}, {"elicitation": {"url": True}}):
        assert not Envelope("2026-07-28", caps).url_elicitation


def test_mirrored_headers() -> None:
    env = Envelope("2026-07-28", {})
    ok = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "a___b"}
    check_headers(ok, env, "tools/call", {"name": "a___b"})
    check_headers({**ok, "mcp-name": _b64("a___b")}, env, "tools/call", {"name": "a___b"})
    check_headers({**ok, "mcp-name": _b64("wéird")}, env, "tools/call", {"name": "wéird"})
    check_headers({**ok, "mcp-method": "tools/list"} | {"mcp-name": "x"}, env, "tools/list", {})  # no name
    for headers in (
        {**ok, "mcp-name": "a___c"},
        {k: v for k, v in ok.items() if k != "mcp-name"},
        {**ok, "mcp-method": "tools/list"},
        {**ok, "mcp-protocol-version": "2025-11-25"},
        {**ok, "mcp-name": "=?base64?not base64?="},
    ):
        with pytest.raises(ModernError) as exc:
            check_headers(headers, env, "tools/call", {"name": "a___b"})
        assert _code(exc) == (400, -32020)


def test_raw_headers_refuse_repeats_and_values_that_are_not_ascii() -> None:
    assert mcp_headers([(b"mcp-method", b"tools/list"), (b"accept", b"*/*")]) == {"mcp-method": "tools/list"}
    with pytest.raises(ModernError) as exc:
        mcp_headers([(b"mcp-name", b"a"), (b"mcp-name", b"b")])
    assert _code(exc) == (400, -32020)
    # a name sent as raw bytes instead of the base64 form never matches (here: Latin-1 "é")
    headers = mcp_headers(
        [(b"mcp-protocol-version", b"2026-07-28"), (b"mcp-method", b"tools/call"), (b"mcp-name", b"\xe9")]
    )
    with pytest.raises(ModernError) as exc:
        check_headers(headers, Envelope("2026-07-28", {}), "tools/call", {"name": "é"})
    assert _code(exc) == (400, -32020)
    assert decode_value("a\x01") is None


def test_base64_values() -> None:
    assert decode_value(_b64("Hello, 世界")) == "Hello, 世界"
    assert decode_value("plain") == "plain" and decode_value(None) is None
    assert decode_value("=?base64?SGk=?=") == "Hi"
    assert decode_value("=?base64?SGl=?=") is None  # not canonical
    assert decode_value("=?base64?//79?=") is None  # not UTF-8


SCHEMA = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "n": {"type": "integer", "x-mcp-header": "N"},
        "deep": {"type": "object", "properties": {"flag": {"type": "boolean", "x-mcp-header": "Flag"}}},
        "free": {"type": "string"},
    },
}


def _map(schema: dict[str, object]) -> HeaderMap:
    return header_map({"name": "t", "inputSchema": schema})


def test_param_headers_match_the_arguments() -> None:
    params = _map(SCHEMA)
    args = {"region": "us-west1", "n": 42, "deep": {"flag": True}}
    good = {"mcp-param-region": "us-west1", "mcp-param-n": "42", "mcp-param-flag": "true"}
    check_param_headers(params, args, good)
    check_param_headers(params, args, {**good, "mcp-param-n": "42.0"})  # compared as numbers
    check_param_headers(params, {"region": "Hello, 世界"}, {"mcp-param-region": _b64("Hello, 世界")})
    check_param_headers(params, {"region": None}, {})  # null: no header expected
    for args_, headers in (
        (args, {**good, "mcp-param-region": "eu"}),
        (args, {k: v for k, v in good.items() if k != "mcp-param-n"}),
        ({"n": 42}, {"mcp-param-n": "42", "mcp-param-region": "us"}),  # a header without its argument
        (args, {**good, "mcp-param-n": "42.5"}),
        (args, {**good, "mcp-param-flag": "True"}),
    ):
        with pytest.raises(ModernError) as exc:
            check_param_headers(params, args_, headers)
        assert _code(exc) == (400, -32020)


def _states(lifetime: float = 60) -> RequestStates:
    return RequestStates(b"s" * 32, lifetime)


REQUEST = {
    "gateway": "gw",
    "principal": "iss#U1",
    "method": "tools/call",
    "tool": "t___x",
    "arguments": {"a": [1, {"b": 2}]},
}


def test_request_state_round_trip_and_what_it_binds() -> None:
    states = _states()
    token = states.new(**REQUEST, session="urn:s", url="https://id/authorize")
    opened = states.open(token, **{**REQUEST, "arguments": {"a": [1, {"b": 2}]}})
    assert (opened.session, opened.url) == ("urn:s", "https://id/authorize")
    for change in (
        {"principal": "iss#U2"},
        {"gateway": "other"},
        {"tool": "t___y"},
        {"method": "prompts/get"},
        {"arguments": {"a": [1, {"b": 3}]}},
    ):
        with pytest.raises(JsonRpcError) as exc:
            states.open(token, **{**REQUEST, **change})
        assert exc.value.code == -32602
    other_key = RequestStates(b"t" * 32, 60).new(**REQUEST, session="urn:s", url="u")
    payload, _, signature = token.partition(".")
    for bad in (other_key, payload + "A." + signature, token + "x", "", 7, "é" * 10, "x" * 5000):
        with pytest.raises(JsonRpcError) as exc:
            states.open(bad, **REQUEST)
        assert exc.value.code == -32602


def test_request_state_expires() -> None:
    states = _states(lifetime=-1)
    token = states.new(**REQUEST, session="urn:s", url="u")
    with pytest.raises(JsonRpcError) as exc:
        states.open(token, **REQUEST)
    assert "expired" in exc.value.message


class _Endpoint:
    """What ConsentRetry uses of ModernEndpoint: the person is still consenting, for ever."""

    def __init__(self) -> None:
        self.waiters = Waiters()
        self.config = ModernConfig(ttl_ms=0, consent_wait=30, keepalive=0.05)
        self.ran = 0
        self.asked = asyncio.Event()  # identity was asked (the waiter is registered by then)

    async def settle(self, call: Any, consent: Any) -> bytes | None:
        self.asked.set()
        return None

    async def answer(self, call: Any, work: Any) -> Any:
        result = await work
        return None if result is None else (200, result)

    async def _run(self, call: Any) -> bytes:
        self.ran += 1
        return b"{}"


async def test_a_client_that_leaves_cancels_the_wait() -> None:
    ep = _Endpoint()
    consent = ConsentState("gw", "p", "tools/call", "t", "d", "urn:s", "u", 0)
    retry = ConsentRetry(ep, object(), consent, sse=True)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []
    left = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if sum(m.get("body", b"") == b": keep-alive\n\n" for m in sent) == 2:
            left.set()  # two keep-alives seen: the client goes away

    await asyncio.wait_for(retry(scope={}, receive=receive, send=send), 5)
    assert sent[0]["headers"][0] == (b"content-type", b"text/event-stream")
    assert ep.ran == 0 and not ep.waiters._waiting  # nothing ran; nobody waits any more
    ep.waiters.wake("urn:s")  # a token issued afterwards wakes nothing
    assert ep.ran == 0


async def test_a_settled_consent_runs_the_call_on_the_same_request() -> None:
    ep = _Endpoint()
    consent = ConsentState("gw", "p", "tools/call", "t", "d", "urn:s", "u", 0)
    retry = ConsentRetry(ep, object(), consent, sse=False)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    running = asyncio.ensure_future(retry(scope={}, receive=receive, send=send))
    await ep.asked.wait()
    ep.waiters.wake("urn:s")  # what identity.token_issued for the session does
    await asyncio.wait_for(running, 5)
    assert ep.ran == 1 and sent[-1]["body"] == b"{}" and sent[0]["status"] == 200


def test_a_targets_state_is_carried_sealed() -> None:
    states = _states()
    token = states.new(**REQUEST, target_asked=True, upstream="the target's own")
    opened = states.open(token, **REQUEST)
    assert opened.target_asked and opened.upstream == "the target's own" and opened.session == ""
    consent = states.open(states.new(**REQUEST, session="urn:s", url="u"), **REQUEST)
    assert not consent.target_asked and consent.upstream is None
    payload, _, signature = token.partition(".")
    with pytest.raises(JsonRpcError):  # the target's state cannot be swapped inside ours
        states.open(payload[:-1] + ("B" if payload.endswith("A") else "A") + "." + signature, **REQUEST)


def test_a_handshake_targets_elicitations_become_url_input_requests() -> None:
    found = [
        {"url": "https://a", "message": "go", "elicitationId": "e1", "mode": "url"},
        {"url": "https://b"},
    ]
    assert url_requests(found) == {
        "e1": {
            "method": "elicitation/create",
            "params": {"mode": "url", "message": "go", "url": "https://a", "elicitationId": "e1"},
        },
        "url-2": {
            "method": "elicitation/create",
            "params": {"mode": "url", "message": "", "url": "https://b"},
        },
    }


def test_the_clients_progress_token_is_not_sent_to_the_target() -> None:
    assert without_token({"progressToken": 1, "k": "v"}) == {"k": "v"}
    assert without_token({"progressToken": 1}) is None
    meta = {"k": "v"}
    assert without_token(meta) is meta and without_token(None) is None


async def test_a_call_streams_progress_only_once_there_is_some() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {}

    async def quiet(on_progress: Any) -> tuple[int, bytes]:
        return 200, b'{"id":1}'

    await CallStream(quiet, "tok", cancel_on_disconnect=True)({}, receive, send)
    assert sent[0]["headers"][0] == (b"content-type", b"application/json") and sent[-1]["body"] == b'{"id":1}'

    sent.clear()

    async def chatty(on_progress: Any) -> tuple[int, bytes]:
        await on_progress({"progressToken": "gatehouse-x", "progress": 1})
        return 200, b'{"id":1}'

    await CallStream(chatty, "tok", cancel_on_disconnect=False)({}, receive, send)
    assert sent[0]["headers"][0] == (b"content-type", b"text/event-stream")
    assert b'"progressToken":"tok"' in sent[1]["body"] and sent[1]["more_body"]
    assert sent[2] == {
        "type": "http.response.body",
        "body": b'event: message\ndata: {"id":1}\n\n',
        "more_body": False,
    }
