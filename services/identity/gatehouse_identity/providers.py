"""OAuth 2.0 credential providers: an upstream authorization server, our client there, its secret sealed.

Their endpoints must be https (loopback aside) and, where identity calls them, not on a denied
network; a discovery document must name the issuer its URL was formed from. Changing where a
provider lives or which client we are there drops what the old registration left: the users'
tokens in the vault and the authorization sessions under way.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from gatehouse_contracts import rpc
from gatehouse_contracts.http import page_token, parse_page
from gatehouse_contracts.jwt import issuer_mismatch
from gatehouse_contracts.netguard import EndpointDenied, EndpointGuard
from gatehouse_contracts.outbound import FetchFailed, Limits, get_json

from .crypto import Vault
from .errors import BadRequest
from .store import ProviderStore

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}")
GITHUB = rpc.AuthorizationServerMetadata(
    issuer="https://github.com",
    authorization_endpoint="https://github.com/login/oauth/authorize",
    token_endpoint="https://github.com/login/oauth/access_token",  # noqa: S106 (a URL, not a secret)
    token_endpoint_auth_methods=["client_secret_post"],
)


def secret_aad(provider_id: str) -> str:
    return f"provider:{provider_id}:client_secret"


def _check_url(guard: EndpointGuard, url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise BadRequest(f"{what} must be an absolute http(s) URL")
    return guard.check_https(url, what)  # EndpointDenied is a BadRequest


async def _check_reachable(guard: EndpointGuard, url: str | None, what: str) -> None:
    """A URL identity will call must not be on (or resolve to) a denied network."""
    if url is None:
        return
    try:
        await guard.check_resolved(url)
    except EndpointDenied as exc:
        raise BadRequest(f"{what}: {exc}") from None


def _from_discovery(guard: EndpointGuard, doc: Any, url: str) -> rpc.AuthorizationServerMetadata:
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), str) for k in ("issuer", "authorization_endpoint", "token_endpoint")
    ):
        raise BadRequest(f"{url} is not OAuth 2.0 authorization server metadata (issuer, endpoints missing)")
    if (mismatch := issuer_mismatch(url, doc["issuer"])) is not None:
        raise BadRequest(f"discoveryUrl: {mismatch}")
    methods = doc.get("token_endpoint_auth_methods_supported")
    revocation = doc.get("revocation_endpoint")
    return rpc.AuthorizationServerMetadata(
        issuer=doc["issuer"],
        authorization_endpoint=_check_url(guard, doc["authorization_endpoint"], "authorization_endpoint"),
        token_endpoint=_check_url(guard, doc["token_endpoint"], "token_endpoint"),
        revocation_endpoint=_check_url(guard, revocation, "revocation_endpoint")
        if isinstance(revocation, str)
        else None,
        token_endpoint_auth_methods=[m for m in methods if isinstance(m, str)]
        if isinstance(methods, list)
        else [],
    )


async def discover(
    http: httpx.AsyncClient, guard: EndpointGuard, url: str, limits: Limits
) -> rpc.AuthorizationServerMetadata:
    """Fetch and check RFC 8414 / OpenID discovery metadata; every fault is a clear 400."""
    _check_url(guard, url, "discoveryUrl")
    try:
        doc = await get_json(http, url, limits)
    except FetchFailed as exc:
        raise BadRequest(f"discoveryUrl {exc}") from None
    return _from_discovery(guard, doc, url)


async def _resolve(
    http: httpx.AsyncClient,
    guard: EndpointGuard,
    req: rpc.CreateOauth2CredentialProvider | rpc.UpdateOauth2CredentialProvider,
    limits: Limits,
) -> tuple[rpc.AuthorizationServerMetadata, str, str, str | None]:
    """(metadata, client id, client secret, discovery URL) of a create/update body."""
    if not NAME.fullmatch(req.name):
        raise BadRequest("name must be 1-128 letters, digits, '_' or '-', starting with a letter or digit")
    config = req.oauth2_provider_config_input
    if req.credential_provider_vendor == "GithubOauth2":
        github = config.github_oauth2_provider_config
        if github is None or config.custom_oauth2_provider_config is not None:
            raise BadRequest("GithubOauth2 takes oauth2ProviderConfigInput.githubOauth2ProviderConfig only")
        return GITHUB, github.client_id, github.client_secret, None
    custom = config.custom_oauth2_provider_config
    if custom is None or config.github_oauth2_provider_config is not None:
        raise BadRequest("CustomOauth2 takes oauth2ProviderConfigInput.customOauth2ProviderConfig only")
    discovery = custom.oauth_discovery
    if (discovery.discovery_url is None) == (discovery.authorization_server_metadata is None):
        raise BadRequest("oauthDiscovery takes exactly one of discoveryUrl or authorizationServerMetadata")
    if not custom.client_id or not custom.client_secret:
        raise BadRequest("clientId and clientSecret are required")
    if discovery.discovery_url is not None:
        metadata = await discover(http, guard, discovery.discovery_url, limits)
    else:
        metadata = discovery.authorization_server_metadata or GITHUB  # not None: checked above
        _check_url(guard, metadata.authorization_endpoint, "authorizationEndpoint")
        _check_url(guard, metadata.token_endpoint, "tokenEndpoint")
        if metadata.revocation_endpoint is not None:
            _check_url(guard, metadata.revocation_endpoint, "revocationEndpoint")
    await _check_reachable(guard, metadata.token_endpoint, "tokenEndpoint")
    await _check_reachable(guard, metadata.revocation_endpoint, "revocationEndpoint")
    return metadata, custom.client_id, custom.client_secret, discovery.discovery_url


def callback_url(public_url: str, provider_id: str) -> str:
    return f"{public_url.rstrip('/')}/identities/oauth2/callback/{provider_id}"


def render(doc: dict[str, Any], public_url: str) -> rpc.Oauth2CredentialProvider:
    return rpc.Oauth2CredentialProvider(
        name=doc["name"],
        credential_provider_vendor=doc["vendor"],
        callback_url=callback_url(public_url, doc["_id"]),
        client_id=doc["clientId"],
        authorization_server_metadata=rpc.AuthorizationServerMetadata(**doc["metadata"]),
        credential_provider_arn=f"gatehouse:credential-provider/{doc['name']}",
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
    )


def _metadata_doc(metadata: rpc.AuthorizationServerMetadata) -> dict[str, Any]:
    return {
        "issuer": metadata.issuer,
        "authorization_endpoint": metadata.authorization_endpoint,
        "token_endpoint": metadata.token_endpoint,
        "revocation_endpoint": metadata.revocation_endpoint,
        "token_endpoint_auth_methods": metadata.token_endpoint_auth_methods,
    }


def _registration(doc: dict[str, Any]) -> tuple[Any, ...]:
    """What a provider's tokens and sessions belong to: where it lives and which client we are there."""
    meta = doc["metadata"]
    return (
        doc["clientId"],
        doc.get("discoveryUrl"),
        meta["issuer"],
        meta["authorization_endpoint"],
        meta["token_endpoint"],
        meta.get("revocation_endpoint"),
    )


class Providers:
    def __init__(
        self,
        store: ProviderStore,
        vault: Vault,
        http: httpx.AsyncClient,
        guard: EndpointGuard,
        public_url: str,
        limits: Limits,
        forget: Callable[[str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.vault = vault
        self.http = http
        self.guard = guard
        self.public_url = public_url
        self.limits = limits
        self.forget = forget
        """Drop what a provider's registration left (vault entries, sessions), by provider id."""

    async def create(self, req: rpc.CreateOauth2CredentialProvider) -> rpc.Oauth2CredentialProvider:
        metadata, client_id, client_secret, discovery_url = await _resolve(
            self.http, self.guard, req, self.limits
        )
        provider_id = secrets.token_hex(8)
        now = time.time()
        doc = {
            "_id": provider_id,
            "name": req.name,
            "vendor": req.credential_provider_vendor,
            "clientId": client_id,
            "clientSecret": self.vault.seal(client_secret, secret_aad(provider_id)),
            "metadata": _metadata_doc(metadata),
            "discoveryUrl": discovery_url,
            "createdAt": now,
            "updatedAt": now,
        }
        await self.store.insert(doc)
        return render(doc, self.public_url)

    async def update(self, req: rpc.UpdateOauth2CredentialProvider) -> rpc.Oauth2CredentialProvider:
        current = await self.store.by_name(req.name)
        metadata, client_id, client_secret, discovery_url = await _resolve(
            self.http, self.guard, req, self.limits
        )
        fields = {
            "vendor": req.credential_provider_vendor,
            "clientId": client_id,
            "clientSecret": self.vault.seal(client_secret, secret_aad(current["_id"])),
            "metadata": _metadata_doc(metadata),
            "discoveryUrl": discovery_url,
            "updatedAt": time.time(),
        }
        moved = _registration(current) != _registration({**current, **fields})
        if moved:  # before and after the change: a token stored in between is dropped too
            await self.forget(current["_id"])
        doc = await self.store.replace(req.name, fields)
        if moved:
            await self.forget(current["_id"])
        return render(doc, self.public_url)

    async def get(self, req: rpc.GetOauth2CredentialProvider) -> rpc.Oauth2CredentialProvider:
        return render(await self.store.by_name(req.name), self.public_url)

    async def delete(self, req: rpc.DeleteOauth2CredentialProvider) -> rpc.Deleted:
        current = await self.store.by_name(req.name)
        await self.store.delete(req.name)
        await self.forget(current["_id"])
        return rpc.Deleted(name=req.name)

    async def list(self, req: rpc.ListOauth2CredentialProviders) -> rpc.Oauth2CredentialProviderList:
        size, after = parse_page(req.max_results, req.next_token)
        docs = await self.store.page(size, after)
        return rpc.Oauth2CredentialProviderList(
            items=[render(d, self.public_url) for d in docs[:size]],
            next_token=page_token(docs[size - 1]["name"] if len(docs) > size else None),
        )

    def client_secret(self, doc: dict[str, Any]) -> str:
        return self.vault.open(doc["clientSecret"], secret_aad(doc["_id"]))
