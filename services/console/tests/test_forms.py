"""The form <-> admin-API body mapping: what the operator typed reaches the API unchanged, and an
existing target's form shows what it holds."""

from __future__ import annotations

import json

from gatehouse_console import forms
from starlette.datastructures import FormData


def _form(**fields: str) -> FormData:
    return FormData(list(fields.items()))


def test_an_open_target_with_inline_tools() -> None:
    tools = json.dumps({"tools": [{"name": "t", "inputSchema": {"type": "object"}}]})
    values = forms.target_values(_form(name=" w ", endpoint="http://h/mcp", inlineTools=tools, auth="NONE"))
    body = forms.target_body(values)
    assert body == {
        "name": "w",
        "targetConfiguration": {
            "mcp": {"mcpServer": {"endpoint": "http://h/mcp", "mcpToolSchema": {"inlinePayload": tools}}}
        },
        "credentialProviderConfigurations": [{"credentialProviderType": "NONE"}],
    }


def test_an_oauth_target_round_trips_through_its_edit_form() -> None:
    typed = _form(
        name="gh",
        description="GitHub",
        endpoint="https://h/mcp",
        auth="OAUTH",
        providerName="corp",
        scopes="a  b",
        grantType="AUTHORIZATION_CODE",
        defaultReturnUrl="https://console/oauth/done",
    )
    body = forms.target_body(forms.target_values(typed))
    oauth = body["credentialProviderConfigurations"][0]["credentialProvider"]["oauthCredentialProvider"]
    assert oauth == {
        "providerName": "corp",
        "scopes": ["a", "b"],
        "grantType": "AUTHORIZATION_CODE",
        "defaultReturnUrl": "https://console/oauth/done",
    }
    shown = forms.values_of({**body, "status": "READY"})
    assert shown == {**forms.target_values(typed), "scopes": "a b"}
    assert forms.oauth_of(body) == oauth and forms.endpoint_of(body) == "https://h/mcp"


def test_provider_bodies() -> None:
    custom = forms.provider_body(
        forms.provider_values(
            _form(name="p", vendor="", discoveryUrl="https://i/.well-known/x", clientId="c", clientSecret="s")
        )
    )
    assert custom["credentialProviderVendor"] == "CustomOauth2"
    assert custom["oauth2ProviderConfigInput"]["customOauth2ProviderConfig"]["oauthDiscovery"] == {
        "discoveryUrl": "https://i/.well-known/x"
    }
    github = forms.provider_body(
        forms.provider_values(_form(name="g", vendor="GithubOauth2", clientId="c", clientSecret="s"))
    )
    assert github["oauth2ProviderConfigInput"] == {
        "githubOauth2ProviderConfig": {"clientId": "c", "clientSecret": "s"}
    }
