"""The one error tree: every error Gatehouse code raises derives from ``GatehouseError``.

    GatehouseError                  500  code + safe message + HTTP status
    ├── BadRequest                  400  the request is malformed or breaks a rule
    │   ├── tools.InvalidTool            a tool definition is not usable MCP (also a ValueError)
    │   ├── netguard.EndpointDenied      an endpoint is on a denied network (also an OSError, so
    │   │                                HTTP clients treat it as a failed connect)
    │   └── audit query.BadFilter        an audit query's filter is wrong (also a ValueError)
    ├── Unauthorized                401  no or wrong credentials
    │   ├── jwt.InvalidToken             a JWT is not acceptable (the message says why)
    │   └── gateway user_auth.Unauthenticated   an MCP caller's bearer token is missing or refused
    ├── Forbidden                   403  credentials fine, action not allowed
    ├── NotFound                    404  no such resource
    ├── Conflict                    409  the resource's state forbids it now
    ├── PayloadTooLarge             413  the body is over the limit
    ├── Unavailable                 503  a dependency (NATS, MongoDB, identity) is down; try again
    │   ├── jwt.IssuerUnavailable        an issuer's discovery document or JWKS cannot be fetched
    │   └── identity oauth.ProviderUnavailable   a credential provider cannot be reached
    ├── config.SettingsError             a setting is missing or malformed (startup)
    │   └── identity crypto.KeyConfigError       a key setting is malformed (also a ValueError)
    ├── outbound.FetchFailed             a discovery/JWKS document could not be fetched
    ├── outbound.ResponseTooLarge        an answer is longer than the caller allows
    ├── mcp_client.McpClientError        talking to an upstream MCP server failed (its subclasses:
    │                                    Unreachable, Timeout, NotAnMcpServer, TooLarge, ...)
    ├── gateway errors.McpHttpError      an MCP transport refusal with its own HTTP status
    ├── gateway user_auth.AuthorizationRequired   the user must consent first (answered as a
    │                                    URL elicitation, not as an error)
    ├── sync-worker status.NoTargetToken   identity gave no token for a target
    ├── identity errors.VaultUnreadable  a secret is sealed with a vault key identity lacks
    └── identity oauth.ProviderRefused   400  the credential provider refused the exchange

Foreign errors (httpx, aiohttp, joserfc, pymongo, nats) are translated once, at the adapter that
meets them, into one of these. Where an error is answered: HTTP APIs by the one handler in
``gatehouse_contracts.http`` (status, code, message); ``tools/call`` by the table in
``gatehouse_gateway.call_errors`` (JSON-RPC code, tool.invoked outcome); across the bus as
(code, message), rebuilt by ``from_code``. ``jsonrpc.JsonRpcError`` is not in the tree: it is a
JSON-RPC answer to send (its ``code`` is the wire's integer), not a failure; the CLI's
``AuthorizeError`` neither, as the CLI does not depend on this package.

Messages are shown to callers as they are: never put a secret in one.
"""

from __future__ import annotations


class GatehouseError(Exception):
    status = 500
    code = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GatehouseError):
    status = 400
    code = "ValidationException"


class Unauthorized(GatehouseError):
    status = 401
    code = "UnauthorizedException"


class Forbidden(GatehouseError):
    status = 403
    code = "AccessDeniedException"


class NotFound(GatehouseError):
    status = 404
    code = "ResourceNotFoundException"


class Conflict(GatehouseError):
    status = 409
    code = "ConflictException"


class PayloadTooLarge(GatehouseError):
    status = 413
    code = "PayloadTooLarge"


class Unavailable(GatehouseError):
    status = 503
    code = "ServiceUnavailableException"


BY_CODE: dict[str, type[GatehouseError]] = {
    cls.code: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unavailable)
}


def from_code(code: str, message: str) -> GatehouseError:
    """Rebuild an error that crossed the bus as (code, message)."""
    return BY_CODE.get(code, GatehouseError)(message)
