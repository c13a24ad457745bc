"""JSON-RPC 2.0 as MCP uses it: parsing one incoming message, encoding answers, error codes."""

from __future__ import annotations

from typing import Any

import msgspec

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
URL_ELICITATION_REQUIRED = -32042  # 2025-11-25 only
# MCP 2026-07-28 (basic/index "Error Codes")
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022

RequestId = str | int


class Request(msgspec.Struct, frozen=True):
    id: RequestId
    method: str
    params: dict[str, Any]


class Notification(msgspec.Struct, frozen=True):
    method: str
    params: dict[str, Any]


class Response(msgspec.Struct, frozen=True):
    """A result or error sent to us by the peer (for a request we made)."""

    id: RequestId | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None


Message = Request | Notification | Response


class JsonRpcError(Exception):
    """An error to answer with: ``code``/``message``/``data`` go on the wire as they are."""

    def __init__(self, code: int, message: str, data: Any = None, *, id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.id = id


_raw = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


MAX_DEPTH = 64


def depth_exceeds(doc: Any, limit: int) -> bool:
    """Whether JSON nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_message(body: bytes) -> Message:
    """One JSON-RPC message, or ``JsonRpcError`` (-32700 malformed or too deeply nested JSON,
    -32600 not a message)."""
    try:
        doc = _raw.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):  # (the latter: bad UTF-8 inside a string)
        raise JsonRpcError(PARSE_ERROR, "Parse error: the body is not valid JSON") from None
    except RecursionError:
        raise JsonRpcError(PARSE_ERROR, f"Parse error: JSON nested deeper than {MAX_DEPTH} levels") from None
    # a body with no more brackets than the limit cannot nest deeper: the walk is for the rest
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and depth_exceeds(doc, MAX_DEPTH):
        raise JsonRpcError(PARSE_ERROR, f"Parse error: JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(doc, list):
        raise JsonRpcError(INVALID_REQUEST, "Invalid Request: batches are not supported")
    if not isinstance(doc, dict):
        raise JsonRpcError(INVALID_REQUEST, "Invalid Request: a JSON-RPC message must be an object")
    msg_id = doc.get("id")
    id_ok = isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool)
    if doc.get("jsonrpc") != "2.0":
        raise JsonRpcError(
            INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"', id=msg_id if id_ok else None
        )
    method = doc.get("method")
    if method is None:
        if "result" in doc or "error" in doc:
            result, error = doc.get("result"), doc.get("error")
            return Response(
                msg_id if id_ok else None,
                result if isinstance(result, dict) else None,
                error if isinstance(error, dict) else None,
            )
        raise JsonRpcError(
            INVALID_REQUEST, 'Invalid Request: "method" is missing', id=msg_id if id_ok else None
        )
    if not isinstance(method, str) or not method:
        raise JsonRpcError(
            INVALID_REQUEST,
            'Invalid Request: "method" must be a non-empty string',
            id=msg_id if id_ok else None,
        )
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise JsonRpcError(
            INVALID_REQUEST, 'Invalid Request: "params" must be an object', id=msg_id if id_ok else None
        )
    if "id" not in doc:
        return Notification(method, params)
    if not id_ok:
        raise JsonRpcError(INVALID_REQUEST, 'Invalid Request: "id" must be a string or an integer')
    return Request(msg_id, method, params)  # type: ignore[arg-type]  # id_ok checked the type


def result(msg_id: RequestId | None, result: Any) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "id": msg_id, "result": result})


def raw_result(msg_id: RequestId | None, result: bytes) -> bytes:
    """A result answer around an already encoded result object."""
    return b'{"jsonrpc":"2.0","id":' + _encoder.encode(msg_id) + b',"result":' + result + b"}"


def error(msg_id: RequestId | None, code: int, message: str, data: Any = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return _encoder.encode({"jsonrpc": "2.0", "id": msg_id, "error": err})


def request(msg_id: RequestId, method: str, params: dict[str, Any] | None = None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        msg["params"] = params
    return _encoder.encode(msg)


def notification(method: str, params: dict[str, Any] | None = None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return _encoder.encode(msg)
