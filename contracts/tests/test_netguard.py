"""Pure rules of the network guard and the issuer check (the attacks themselves run against the
stack in tests/test_network_guard.py)."""

from __future__ import annotations

import pytest

from gatehouse_contracts.jwt import issuer_mismatch
from gatehouse_contracts.netguard import EndpointDenied, EndpointGuard, is_loopback, shown


def test_queries_and_user_info_are_not_shown() -> None:
    assert shown("https://u:pw@mcp.example:8443/mcp?api_key=k#f") == "https://mcp.example:8443/mcp"


def test_https_is_required_except_for_loopback() -> None:
    guard = EndpointGuard()
    for url in ("https://a.example/x", "http://127.0.0.9/x", "http://[::1]:5/x", "http://localhost/x"):
        assert guard.check_https(url, "u") == url
    for url in ("http://a.example/x", "http://10.0.0.1/x", "ftp://127.0.0.1/x", "http://localhost.evil/x"):
        with pytest.raises(EndpointDenied, match="u must be an https URL"):
            guard.check_https(url, "u")
    assert EndpointGuard(allow_insecure_http=True).check_https("http://a.example/x", "u")
    assert is_loopback("127.1.2.3") and not is_loopback("128.0.0.1")


async def test_denied_literal_addresses_are_refused_and_allowed_ones_kept() -> None:
    guard = EndpointGuard("127.0.0.3/32,169.254.0.0/16")
    assert [r["host"] for r in await guard.resolve("127.0.0.2", 80)] == ["127.0.0.2"]
    for host in ("127.0.0.3", "[::ffff:127.0.0.3]", "169.254.169.254", "metadata.google.internal"):
        with pytest.raises(EndpointDenied, match="denied network"):
            await guard.resolve(host, 80)
    await guard.close()


@pytest.mark.parametrize(
    ("url", "issuer"),
    [
        ("https://idp.example/.well-known/openid-configuration", "https://idp.example"),
        ("https://idp.example/t1/.well-known/openid-configuration", "https://idp.example/t1"),
        ("https://idp.example/.well-known/oauth-authorization-server/t1", "https://idp.example/t1"),
        ("https://idp.example/.well-known/oauth-authorization-server", "https://idp.example/"),
    ],
)
def test_the_issuer_of_the_discovery_url_matches(url: str, issuer: str) -> None:
    assert issuer_mismatch(url, issuer) is None


@pytest.mark.parametrize(
    "issuer", ["https://evil.example", "https://idp.example/other", "http://idp.example", None, ""]
)
def test_another_issuer_does_not_match(issuer: str | None) -> None:
    assert issuer_mismatch("https://idp.example/.well-known/openid-configuration", issuer) is not None
