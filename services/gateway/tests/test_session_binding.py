"""Which requests may use an MCP session: the pure check behind the endpoint's 404 and 403."""

from __future__ import annotations

import pytest

from gatehouse_gateway.errors import McpHttpError
from gatehouse_gateway.sessions import SessionClaims, bind

CLAIMS = SessionClaims("gw", "2025-11-25", 1000, "n1", "jwt:alice")


def test_the_callers_own_live_session_on_its_gateway_is_bound() -> None:
    assert bind(CLAIMS, "gw", "jwt:alice", set()) is CLAIMS
    anonymous = SessionClaims("gw", "2025-11-25", 1000, "n2")
    assert bind(anonymous, "gw", "", set()) is anonymous


@pytest.mark.parametrize(
    ("claims", "gateway_id", "ended"),
    [
        (None, "gw", set()),  # forged, malformed or expired
        (CLAIMS, "other-gw", set()),  # issued by another gateway
        (CLAIMS, "gw", {"n1"}),  # ended by a DELETE
    ],
)
def test_a_session_that_is_not_valid_here_is_404(
    claims: SessionClaims | None, gateway_id: str, ended: set[str]
) -> None:
    with pytest.raises(McpHttpError) as err:
        bind(claims, gateway_id, "jwt:alice", ended)
    assert err.value.status == 404


@pytest.mark.parametrize("user", ["jwt:bob", ""])
def test_another_users_session_is_403(user: str) -> None:
    with pytest.raises(McpHttpError) as err:
        bind(CLAIMS, "gw", user, set())
    assert err.value.status == 403
