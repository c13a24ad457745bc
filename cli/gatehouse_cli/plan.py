"""What ``gatehouse apply`` will do: the difference between a file and what the APIs hold (pure).

An object is found by name (providers and gateways globally, targets within their gateway). It is
created when missing, updated when a field the file governs differs, and left alone when equal.
Fields the file omits count as the API's defaults, except ``supportedVersions`` (the server's
default list), which is compared only when given. Secrets cannot be read back, so they are not
compared: ``--update-secrets`` sends them anyway. Unchanged targets that failed are synchronized
again. With ``prune``, targets of the file's gateways that the file does not list are deleted,
and so are gateways carrying the file's mark that it no longer lists (with their targets).
Providers carry no mark and are never pruned."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .api import Doc
from .spec import Spec, owner_of

FAILED = ("FAILED", "UPDATE_UNSUCCESSFUL", "SYNCHRONIZE_UNSUCCESSFUL")
PENDING = ("CREATE_PENDING_AUTH", "UPDATE_PENDING_AUTH", "SYNCHRONIZE_PENDING_AUTH")


class Conflict(Exception):
    """The file names something another file manages."""


@dataclass(frozen=True)
class Action:
    verb: str  # create | update | sync | delete
    kind: str  # provider | gateway | target
    name: str  # "provider", "gateway" or "gateway/target"
    body: Doc | None = None
    current: Doc | None = None  # the object as the API holds it (ids)
    gateway: str | None = None  # a target's gateway name
    changes: tuple[str, ...] = ()

    def line(self) -> str:
        sign = {"create": "+", "update": "~", "sync": "↻", "delete": "-"}[self.verb]
        detail = f" ({', '.join(self.changes)})" if self.changes else ""
        return f"  {sign} {self.verb} {self.kind} {self.name}{detail}"


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def of(self, *verbs: str) -> list[Action]:
        return [a for a in self.actions if a.verb in verbs]


def _diff(want: Doc, have: Doc) -> tuple[str, ...]:
    return tuple(key for key in want if want[key] != have.get(key))


# -- the comparable form of each kind: the file's body and the API's answer, mapped alike ------


def _provider_want(body: Doc, have: Doc) -> Doc:
    config = next(iter(body["oauth2ProviderConfigInput"].values()))
    want: Doc = {"credentialProviderVendor": body["credentialProviderVendor"], "clientId": config["clientId"]}
    discovery = config.get("oauthDiscovery") or {}
    if "discoveryUrl" in discovery:
        # the API keeps the discovered metadata, whose issuer the discovery URL is made from
        url = discovery["discoveryUrl"]
        issuer = (have.get("authorizationServerMetadata") or {}).get("issuer", "")
        want["discoveryUrl"] = url if url in discovery_urls(issuer) else None
    elif "authorizationServerMetadata" in discovery:
        meta = discovery["authorizationServerMetadata"]
        want["authorizationServerMetadata"] = {
            "issuer": meta["issuer"],
            "authorizationEndpoint": meta["authorizationEndpoint"],
            "tokenEndpoint": meta["tokenEndpoint"],
            "revocationEndpoint": meta.get("revocationEndpoint"),
            "tokenEndpointAuthMethods": meta.get("tokenEndpointAuthMethods", []),
        }
    return want


def _provider_have(have: Doc, want: Doc) -> Doc:
    out = dict(have)
    if "discoveryUrl" in want:
        out["discoveryUrl"] = want["discoveryUrl"] or "(another issuer)"
    return out


def discovery_urls(issuer: str) -> set[str]:
    """The discovery URLs an issuer's metadata may be read from (RFC 8414 §3, OpenID Discovery)."""
    if not issuer:
        return set()
    base = issuer.rstrip("/")
    scheme, _, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    names = ("oauth-authorization-server", "openid-configuration")
    return {f"{scheme}://{host}/.well-known/{n}{slash}{path}" for n in names} | {
        f"{base}/.well-known/{n}" for n in names
    }


def _authorizer(config: Doc | None) -> Doc | None:
    jwt = (config or {}).get("customJWTAuthorizer")
    if not jwt:
        return None
    login = jwt.get("loginClient")
    return {
        "discoveryUrl": jwt["discoveryUrl"],
        "allowedAudience": jwt.get("allowedAudience", []),
        "allowedClients": jwt.get("allowedClients", []),
        "allowedScopes": jwt.get("allowedScopes", []),
        "loginClient": {"clientId": login["clientId"]} if login else None,
    }


def _gateway(body: Doc, given: Doc) -> Doc:
    mcp = (body.get("protocolConfiguration") or {}).get("mcp") or {}
    out: Doc = {
        "description": body.get("description", ""),
        "authorizerType": body.get("authorizerType", "NONE"),
        "authorizer": _authorizer(body.get("authorizerConfiguration")),
        "instructions": mcp.get("instructions"),
        # tool search (docs/search.md): stored as given, absent when not given
        "searchType": mcp.get("searchType"),
        "toolListMode": mcp.get("toolListMode"),
        "pinnedTools": mcp.get("pinnedTools", []),
    }
    given_mcp = (given.get("protocolConfiguration") or {}).get("mcp") or {}
    if "supportedVersions" in given_mcp:
        out["supportedVersions"] = mcp.get("supportedVersions")
    return out


def _credentials(configs: list[Doc] | None) -> list[Doc]:
    out = []
    for config in configs or [{"credentialProviderType": "NONE"}]:
        oauth = (config.get("credentialProvider") or {}).get("oauthCredentialProvider")
        if oauth is None:
            out.append({"credentialProviderType": config["credentialProviderType"]})
            continue
        filled = {
            "providerName": oauth["providerName"],
            "scopes": oauth.get("scopes", []),
            "customParameters": oauth.get("customParameters", {}),
            "grantType": oauth.get("grantType", "CLIENT_CREDENTIALS"),
            "defaultReturnUrl": oauth.get("defaultReturnUrl"),
        }
        out.append({"credentialProviderType": "OAUTH", "oauthCredentialProvider": filled})
    return out


def _target(body: Doc) -> Doc:
    server = body["targetConfiguration"]["mcp"]["mcpServer"]
    payload = (server.get("mcpToolSchema") or {}).get("inlinePayload")
    return {
        "description": body.get("description", ""),
        "endpoint": server["endpoint"],
        "tools": json.loads(payload) if isinstance(payload, str) else None,
        "credentials": _credentials(body.get("credentialProviderConfigurations")),
    }


# -- the plan ----------------------------------------------------------------------------------


def make(
    spec: Spec,
    providers: list[Doc],
    gateways: list[Doc],
    targets: dict[str, list[Doc]],
    *,
    prune: bool = False,
    update_secrets: bool = False,
) -> Plan:
    """``targets``: the current targets of each existing gateway, by gateway id."""
    plan = Plan()
    have_providers = {p["name"]: p for p in providers}
    for body in spec.providers:
        name = body["name"]
        if (have := have_providers.get(name)) is None:
            plan.actions.append(Action("create", "provider", name, body))
            continue
        want = _provider_want(body, have)
        changes = _diff(want, _provider_have(have, want)) + (("clientSecret",) if update_secrets else ())
        _update_or_keep(plan, Action("update", "provider", name, body, have, changes=changes))

    have_gateways = {g["name"]: g for g in gateways}
    for gateway in spec.gateways:
        name = gateway.body["name"]
        have = have_gateways.get(name)
        if have is None:
            plan.actions.append(Action("create", "gateway", name, gateway.body))
            plan.actions += [
                Action("create", "target", f"{name}/{t['name']}", t, gateway=name) for t in gateway.targets
            ]
            continue
        owner = owner_of(have.get("description", ""))
        if owner not in (None, spec.name):
            raise Conflict(
                f"gateway {name!r} is managed by the file named {owner!r} (its description says so)"
            )
        changes = _diff(_gateway(gateway.body, gateway.body), _gateway(have, gateway.body))
        login = (_authorizer(gateway.body.get("authorizerConfiguration")) or {}).get("loginClient")
        if update_secrets and login:
            changes += ("loginClient.clientSecret",)
        _update_or_keep(plan, Action("update", "gateway", name, gateway.body, have, changes=changes))
        _targets(plan, name, gateway.targets, targets.get(have["gatewayId"], []), prune)

    if prune:
        listed = {g.body["name"] for g in spec.gateways}
        for have in gateways:
            if have["name"] not in listed and owner_of(have.get("description", "")) == spec.name:
                plan.actions += [
                    Action("delete", "target", f"{have['name']}/{t['name']}", current=t, gateway=have["name"])
                    for t in targets.get(have["gatewayId"], [])
                ]
                plan.actions.append(Action("delete", "gateway", have["name"], current=have))
    return plan


def _update_or_keep(plan: Plan, action: Action) -> None:
    if action.changes:
        plan.actions.append(action)
    else:
        plan.unchanged.append(f"{action.kind} {action.name}")


def _targets(plan: Plan, gateway: str, wanted: list[Doc], have: list[Doc], prune: bool) -> None:
    by_name = {t["name"]: t for t in have}
    for body in wanted:
        name = f"{gateway}/{body['name']}"
        current = by_name.get(body["name"])
        if current is None:
            plan.actions.append(Action("create", "target", name, body, gateway=gateway))
            continue
        changes = _diff(_target(body), _target(current))
        if not changes and current["status"] in FAILED:
            plan.actions.append(Action("sync", "target", name, body, current, gateway, (current["status"],)))
            continue
        _update_or_keep(plan, Action("update", "target", name, body, current, gateway, changes))
    if prune:
        listed = {t["name"] for t in wanted}
        plan.actions += [
            Action("delete", "target", f"{gateway}/{t['name']}", current=t, gateway=gateway)
            for t in have
            if t["name"] not in listed
        ]
