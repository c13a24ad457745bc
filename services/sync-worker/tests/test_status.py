"""Pure sync-worker rules: terminal statuses, retry decisions, reasons."""

from __future__ import annotations

from gatehouse_contracts.mcp_client import NotAnMcpServer, UpstreamTimeout, UpstreamUnreachable
from gatehouse_contracts.tools import InvalidTool
from gatehouse_sync_worker.status import backoff, failed_status, is_retryable, reason


def test_failed_status_follows_the_phase() -> None:
    assert failed_status("CREATING") == "FAILED"
    assert failed_status("UPDATING") == "UPDATE_UNSUCCESSFUL"
    assert failed_status("SYNCHRONIZING") == "SYNCHRONIZE_UNSUCCESSFUL"


def test_only_passing_faults_are_retried() -> None:
    assert is_retryable(UpstreamUnreachable("x")) and is_retryable(UpstreamTimeout("x"))
    assert not is_retryable(NotAnMcpServer("x")) and not is_retryable(InvalidTool("x"))


def test_reasons_are_readable() -> None:
    url = "http://t/mcp"
    assert reason(UpstreamUnreachable("refused"), url).startswith("Target unreachable")
    assert reason(UpstreamTimeout("no answer within 3s"), url).startswith("Target timed out")
    assert reason(NotAnMcpServer("HTML"), url).startswith("Not an MCP server")
    assert reason(InvalidTool("too many tools: 9 (the limit is 5)"), url).startswith("Too many tools")
    assert reason(InvalidTool("tool #1 has an invalid name"), url).startswith("Invalid tool definition")


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n, 1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert backoff(30, 1.0) == 60.0


def test_identity_refusals_are_retried_only_when_identity_or_the_provider_was_down() -> None:
    from gatehouse_contracts.errors import Forbidden, GatehouseError, Unavailable
    from gatehouse_sync_worker.status import NoTargetToken

    down = NoTargetToken.refused_by_identity(Unavailable("identity is down"))
    assert (down.message, down.retryable, is_retryable(down)) == ("identity is down", True, True)
    for refusal in (Forbidden("not yours"), GatehouseError("no token")):
        refused = NoTargetToken.refused_by_identity(refusal)
        assert (refused.message, refused.retryable) == (refusal.message, False)
