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


def reason(exc: Exception, url: str) -> str:
    """A human-readable ``statusReasons`` entry; never carries a credential (nor the endpoint's query)."""
    endpoint = shown(url)
    if isinstance(exc, NoTargetToken):
        return f"No token for the target from identity: {exc}"
    if isinstance(exc, UpstreamUnreachable):
        return f"Target unreachable: cannot connect to {endpoint} ({exc})"
    if isinstance(exc, UpstreamTimeout):
        return f"Target timed out: {endpoint} gave {exc}"
    if isinstance(exc, UpstreamUnauthorized):
        return f"Target refused the credentials: {exc}"
    if isinstance(exc, EndpointNotAllowed):
        return f"Endpoint not allowed: {exc}"
    if isinstance(exc, NotAnMcpServer):
        return f"Not an MCP server: {endpoint}: {exc}"
    if isinstance(exc, UpstreamTooLarge):
        return f"Answer too large: {exc} (SYNC_MAX_RESPONSE_BYTES)"
    if isinstance(exc, UpstreamRpcError):
        return f"The MCP server answered with an error: {exc}"
    if isinstance(exc, InvalidTool):
        text = str(exc)
        return (
            f"Too many tools: {text}"
            if text.startswith("too many tools")
            else f"Invalid tool definition: {text}"
        )
    if isinstance(exc, McpClientError):
        return f"MCP error: {exc}"
    return f"Unexpected error: {type(exc).__name__}"


def backoff(attempt: int, base: float) -> float:
    """Seconds to wait before attempt ``attempt + 1``: base, 2*base, 4*base ... capped at a minute."""
    return float(min(60.0, base * 2 ** (attempt - 1)))
