"""The gateway's errors: the shared hierarchy (see ``gatehouse_contracts.errors``) plus MCP-side ones.

McpHttpError   an MCP transport refusal answered with a bare HTTP status (400, 403, 404, 405, 406, 415, 429)
"""

from gatehouse_contracts.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GatehouseError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
)


class McpHttpError(GatehouseError):
    """Refuse an MCP HTTP request with ``status``; the body is a JSON-RPC error without an id."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "GatehouseError",
    "McpHttpError",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "Unavailable",
]
