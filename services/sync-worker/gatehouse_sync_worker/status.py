"""Pure rules of a sync's outcome: what a reason says, when to retry (the statuses are in
``gatehouse_contracts.lifecycle``)."""

from __future__ import annotations

from gatehouse_contracts.errors import GatehouseError, Unavailable
from gatehouse_contracts.lifecycle import failed_status
from gatehouse_contracts.mcp_client import (
    EndpointNotAllowed,
    McpClientError,
    NotAnMcpServer,
    UpstreamRpcError,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnauthorized,
    UpstreamUnreachable,
)
from gatehouse_contracts.netguard import shown
from gatehouse_contracts.tools import InvalidTool

# failed_status lives in the lifecycle; named here too for the rules' unit tests
__all__ = ["NoTargetToken", "backoff", "failed_status", "is_retryable", "reason"]


class NoTargetToken(GatehouseError):
    """Identity gave no token for the target; ``retryable`` when identity or the provider was down."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable

    @classmethod
    def refused_by_identity(cls, exc: GatehouseError) -> NoTargetToken:
        """Identity's refusal as a sync fault: retried when identity or the provider was down."""
        return cls(exc.message, retryable=isinstance(exc, Unavailable))


def is_retryable(exc: Exception) -> bool:
    """Faults that may pass (down, slow) are retried; a wrong answer will be wrong again."""
    if isinstance(exc, NoTargetToken):
        return exc.retryable
    return isinstance(exc, (UpstreamUnreachable, UpstreamTimeout))


# What a failed sync says in ``statusReasons``, by error type (the first that matches); formatted with
# the error and the endpoint without its query, so no credential ever shows.
REASONS: tuple[tuple[type[Exception], str], ...] = (
    (NoTargetToken, "No token for the target from identity: {exc}"),
    (UpstreamUnreachable, "Target unreachable: cannot connect to {endpoint} ({exc})"),
    (UpstreamTimeout, "Target timed out: {endpoint} gave {exc}"),
    (UpstreamUnauthorized, "Target refused the credentials: {exc}"),
    (EndpointNotAllowed, "Endpoint not allowed: {exc}"),
    (NotAnMcpServer, "Not an MCP server: {endpoint}: {exc}"),
    (UpstreamTooLarge, "Answer too large: {exc} (SYNC_MAX_RESPONSE_BYTES)"),
    (UpstreamRpcError, "The MCP server answered with an error: {exc}"),
    (McpClientError, "MCP error: {exc}"),
)


def reason(exc: Exception, url: str) -> str:
    """A human-readable ``statusReasons`` entry; never carries a credential (nor the endpoint's query)."""
    if isinstance(exc, InvalidTool):
        text = str(exc)
        return (
            f"Too many tools: {text}"
            if text.startswith("too many tools")
            else f"Invalid tool definition: {text}"
        )
    for kind, template in REASONS:
        if isinstance(exc, kind):
            return template.format(exc=exc, endpoint=shown(url))
    return f"Unexpected error: {type(exc).__name__}"


def backoff(attempt: int, base: float) -> float:
    """Seconds to wait before attempt ``attempt + 1``: base, 2*base, 4*base ... capped at a minute."""
    return float(min(60.0, base * 2 ** (attempt - 1)))
