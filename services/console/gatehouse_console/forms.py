"""Form fields to admin-API bodies and back (pure: no I/O). The API validates; the console only
shapes what the operator typed, so every refusal the operator sees is the API's own message."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

Doc = dict[str, Any]


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


TARGET_FIELDS = (
    "name",
    "description",
    "endpoint",
    "inlineTools",
    "auth",
    "providerName",
    "scopes",
    "grantType",
    "defaultReturnUrl",
)


def target_values(form: FormData) -> dict[str, str]:
    return {name: field(form, name) for name in TARGET_FIELDS}


def target_body(values: dict[str, str]) -> Doc:
    server: Doc = {"endpoint": values["endpoint"]}
    if values["inlineTools"]:
        server["mcpToolSchema"] = {"inlinePayload": values["inlineTools"]}
    credentials: Doc = {"credentialProviderType": "NONE"}
    if values["auth"] == "OAUTH":
        oauth: Doc = {
            "providerName": values["providerName"],
            "scopes": values["scopes"].split(),
            "grantType": values["grantType"] or "CLIENT_CREDENTIALS",
        }
        if values["defaultReturnUrl"]:
            oauth["defaultReturnUrl"] = values["defaultReturnUrl"]
        credentials = {
            "credentialProviderType": "OAUTH",
            "credentialProvider": {"oauthCredentialProvider": oauth},
        }
    body: Doc = {
        "name": values["name"],
        "targetConfiguration": {"mcp": {"mcpServer": server}},
        "credentialProviderConfigurations": [credentials],
    }
    if values["description"]:
        body["description"] = values["description"]
    return body


def oauth_of(target: Doc) -> Doc:
    """A target's OAuth credential settings ({} for an open target)."""
    for config in target.get("credentialProviderConfigurations") or []:
        oauth = (config.get("credentialProvider") or {}).get("oauthCredentialProvider")
        if config.get("credentialProviderType") == "OAUTH" and isinstance(oauth, dict):
            return oauth
    return {}


def endpoint_of(target: Doc) -> str:
    return str(target["targetConfiguration"]["mcp"]["mcpServer"]["endpoint"])


def values_of(target: Doc) -> dict[str, str]:
    """The edit form's values for a target as the API shows it."""
    server = target["targetConfiguration"]["mcp"]["mcpServer"]
    oauth = oauth_of(target)
    return {
        "name": target.get("name", ""),
        "description": target.get("description", ""),
        "endpoint": server["endpoint"],
        "inlineTools": (server.get("mcpToolSchema") or {}).get("inlinePayload", ""),
        "auth": "OAUTH" if oauth else "NONE",
        "providerName": oauth.get("providerName", ""),
        "scopes": " ".join(oauth.get("scopes", [])),
        "grantType": oauth.get("grantType", ""),
        "defaultReturnUrl": oauth.get("defaultReturnUrl", ""),
    }


PROVIDER_FIELDS = ("name", "vendor", "discoveryUrl", "clientId", "clientSecret")


def provider_values(form: FormData) -> dict[str, str]:
    return {name: field(form, name) for name in PROVIDER_FIELDS}


def provider_body(values: dict[str, str]) -> Doc:
    if values["vendor"] == "GithubOauth2":
        config: Doc = {
            "githubOauth2ProviderConfig": {
                "clientId": values["clientId"],
                "clientSecret": values["clientSecret"],
            }
        }
    else:
        config = {
            "customOauth2ProviderConfig": {
                "oauthDiscovery": {"discoveryUrl": values["discoveryUrl"]},
                "clientId": values["clientId"],
                "clientSecret": values["clientSecret"],
            }
        }
    return {
        "name": values["name"],
        "credentialProviderVendor": values["vendor"] or "CustomOauth2",
        "oauth2ProviderConfigInput": config,
    }
