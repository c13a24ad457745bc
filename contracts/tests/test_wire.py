"""Pure wire logic: JSON-RPC parsing, tool validation, the event union, SSE bodies."""

from __future__ import annotations

import msgspec
import pytest

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.events import (
    EVENT_TYPES,
    TargetCreated,
    decode_event,
    encode_event,
    event_type,
    new_event,
)
from gatehouse_contracts.mcp_client import _sse_messages
from gatehouse_contracts.subjects import event_subject
from gatehouse_contracts.tools import InvalidTool, validate_tools


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{", jsonrpc.PARSE_ERROR),
        (b"[]", jsonrpc.INVALID_REQUEST),
        (b"3", jsonrpc.INVALID_REQUEST),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}', jsonrpc.INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1}', jsonrpc.INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 5}', jsonrpc.INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1]}', jsonrpc.INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": true, "method": "x"}', jsonrpc.INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": null, "method": "x"}', jsonrpc.INVALID_REQUEST),
    ],
)
def test_bad_messages_are_refused_with_the_right_code(body: bytes, code: int) -> None:
    with pytest.raises(jsonrpc.JsonRpcError) as err:
        jsonrpc.parse_message(body)
    assert err.value.code == code


def test_messages_are_told_apart() -> None:
    assert jsonrpc.parse_message(b'{"jsonrpc":"2.0","id":"a","method":"ping"}') == jsonrpc.Request(
        "a", "ping", {}
    )
    assert jsonrpc.parse_message(b'{"jsonrpc":"2.0","method":"n"}') == jsonrpc.Notification("n", {})
    assert isinstance(jsonrpc.parse_message(b'{"jsonrpc":"2.0","id":1,"result":{}}'), jsonrpc.Response)
    assert (
        jsonrpc.error(1, -32601, "nope")
        == b'{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}'
    )


def test_tool_validation() -> None:
    good = {"name": "a.b-c_1", "inputSchema": {"type": "object", "$schema": "x"}}
    assert validate_tools([good], 10) == [good]
    for bad, fragment in [
        ({"name": "has space", "inputSchema": {}}, "invalid name"),
        ({"name": "x" * 129, "inputSchema": {}}, "invalid name"),
        ({"name": "x"}, "inputSchema"),
        ({"name": "x", "inputSchema": {"type": "string"}}, "type"),
        ({"name": "x", "inputSchema": {}, "description": 3}, "description"),
        ("not a tool", "not a JSON object"),
    ]:
        with pytest.raises(InvalidTool, match=fragment):
            validate_tools([bad], 10)
    with pytest.raises(InvalidTool, match="too many tools"):
        validate_tools([good] * 3, 2)
    with pytest.raises(InvalidTool, match="twice"):
        validate_tools([good, good], 10)


def test_every_event_round_trips_through_the_one_decoder() -> None:
    tags = [event_type(cls) for cls in EVENT_TYPES]
    assert len(tags) == len(set(tags)) >= 15
    event = new_event(TargetCreated, source="t", gateway_id="g", target_id="x", generation=3)
    assert decode_event(encode_event(event)) == event
    assert event_subject(event) == "gatehouse.events.target.created"
    assert msgspec.json.decode(encode_event(event))["type"] == "target.created"
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"type": "target.exploded"}')


def test_sse_bodies_yield_each_data_payload() -> None:
    body = 'event: message\ndata: {"a": 1}\n\n: comment\nid: 7\ndata: {"b":\ndata: 2}\n\ndata: not json\n\n'
    assert _sse_messages(body) == [{"a": 1}, {"b": 2}]
