"""The pure part of `gatehouse apply`: what differs between a file and what the APIs hold."""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse_cli import plan
from gatehouse_cli.spec import Gateway, Spec, mark, owner_of


def _api_target(name: str, **fields: Any) -> dict[str, Any]:
    """A target as the API answers it (every default filled in)."""
    return {
        "gatewayId": "gw-1",
        "targetId": f"ID{name}",
        "name": name,
        "description": "",
        "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": "http://127.0.0.1:9/mcp"}}},
        "credentialProviderConfigurations": [{"credentialProviderType": "NONE"}],
        "status": "READY",
        **fields,
    }


def _api_gateway(name: str, description: str = "") -> dict[str, Any]:
    return {
        "gatewayId": f"{name}-1",
        "name": name,
        "description": description,
        "authorizerType": "NONE",
        "authorizerConfiguration": None,
        "protocolConfiguration": {"mcp": {"supportedVersions": ["2025-11-25", "2025-06-18"]}},
    }


def _spec(*targets: dict[str, Any], owner: str = "team-a") -> Spec:
    body = {"name": "gw", "description": mark("", owner)}
    return Spec(owner, [], [Gateway(body, list(targets))])


def _file_target(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": "http://127.0.0.1:9/mcp"}}},
        **fields,
    }


def test_omitted_fields_are_the_apis_defaults() -> None:
    gateway = {**_api_gateway("gw", mark("", "team-a")), "gatewayId": "gw-1"}
    oauth = {
        "providerName": "p",
        "scopes": [],
        "customParameters": {},
        "grantType": "CLIENT_CREDENTIALS",
        "defaultReturnUrl": None,
    }
    have = _api_target(
        "t",
        credentialProviderConfigurations=[
            {"credentialProviderType": "OAUTH", "credentialProvider": {"oauthCredentialProvider": oauth}}
        ],
    )
    want = _file_target(
        "t",
        credentialProviderConfigurations=[
            {
                "credentialProviderType": "OAUTH",
                "credentialProvider": {"oauthCredentialProvider": {"providerName": "p"}},
            }
        ],
    )
    result = plan.make(_spec(want), [], [gateway], {"gw-1": [have]})
    assert result.actions == [] and result.unchanged == ["gateway gw", "target gw/t"]
    # a field removed from the file goes back to its default: an update
    changed = plan.make(_spec(_file_target("t")), [], [gateway], {"gw-1": [have]})
    assert [(a.verb, a.name, a.changes) for a in changed.actions] == [("update", "gw/t", ("credentials",))]


def test_supported_versions_are_compared_only_when_given() -> None:
    gateway = _api_gateway("gw", mark("", "team-a"))
    assert plan.make(_spec(), [], [gateway], {}).actions == []
    body = {
        "name": "gw",
        "description": mark("", "team-a"),
        "protocolConfiguration": {"mcp": {"supportedVersions": ["2025-11-25"]}},
    }
    result = plan.make(Spec("team-a", [], [Gateway(body, [])]), [], [gateway], {})
    assert [a.changes for a in result.actions] == [("supportedVersions",)]


def test_tool_search_settings_are_compared() -> None:
    gateway = _api_gateway("gw", mark("", "team-a"))
    search = {"searchType": "SEMANTIC", "toolListMode": "SEARCH_ONLY", "pinnedTools": ["t___f"]}
    body = {"name": "gw", "description": mark("", "team-a"), "protocolConfiguration": {"mcp": search}}
    result = plan.make(Spec("team-a", [], [Gateway(body, [])]), [], [gateway], {})
    assert [a.changes for a in result.actions] == [("searchType", "toolListMode", "pinnedTools")]
    gateway["protocolConfiguration"]["mcp"].update(search)
    assert plan.make(Spec("team-a", [], [Gateway(body, [])]), [], [gateway], {}).actions == []


def test_inline_tools_compare_as_json_not_as_text() -> None:
    payload = '{"tools": [{"name": "f", "inputSchema": {"type": "object"}}]}'
    server = {"endpoint": "http://127.0.0.1:9/mcp", "mcpToolSchema": {"inlinePayload": payload}}
    have = _api_target("t", targetConfiguration={"mcp": {"mcpServer": server}})
    spaced = {**server, "mcpToolSchema": {"inlinePayload": payload.replace(": ", ":")}}
    want = _file_target("t", targetConfiguration={"mcp": {"mcpServer": spaced}})
    assert (
        plan.make(_spec(want), [], [_api_gateway("gw", mark("", "team-a"))], {"gw-1": [have]}).actions == []
    )


def test_prune_deletes_only_what_the_file_manages() -> None:
    mine, other, manual = (
        _api_gateway("gone", mark("x", "team-a")),
        _api_gateway("theirs", mark("", "b")),
        _api_gateway("hand"),
    )
    gw = _api_gateway("gw", mark("", "team-a"))
    targets = {
        "gw-1": [_api_target("keep"), _api_target("extra")],
        "gone-1": [_api_target("t", gatewayId="gone-1")],
    }
    result = plan.make(_spec(_file_target("keep")), [], [gw, mine, other, manual], targets, prune=True)
    assert [(a.verb, a.kind, a.name) for a in result.actions] == [
        ("delete", "target", "gw/extra"),
        ("delete", "target", "gone/t"),
        ("delete", "gateway", "gone"),
    ]
    assert plan.make(_spec(_file_target("keep")), [], [gw, mine], targets).actions == []  # no --prune


def test_a_gateway_of_another_file_is_refused() -> None:
    with pytest.raises(plan.Conflict, match="managed by the file named 'b'"):
        plan.make(_spec(), [], [_api_gateway("gw", mark("", "b"))], {})


def test_a_failed_unchanged_target_is_synchronized_again() -> None:
    have = _api_target("t", status="FAILED")
    result = plan.make(
        _spec(_file_target("t")), [], [_api_gateway("gw", mark("", "team-a"))], {"gw-1": [have]}
    )
    assert [(a.verb, a.changes) for a in result.actions] == [("sync", ("FAILED",))]


def test_the_mark_and_discovery_urls() -> None:
    assert (
        mark("Team tools", "team-a") == "Team tools [gatehouse:team-a]" and mark("", "a") == "[gatehouse:a]"
    )
    assert owner_of("Team tools [gatehouse:team-a]") == "team-a" and owner_of("[gatehouse:x] text") is None
    assert plan.discovery_urls("https://as.example.com/tenant") == {
        "https://as.example.com/.well-known/oauth-authorization-server/tenant",
        "https://as.example.com/.well-known/openid-configuration/tenant",
        "https://as.example.com/tenant/.well-known/oauth-authorization-server",
        "https://as.example.com/tenant/.well-known/openid-configuration",
    }
