"""Who calls the MCP endpoint (the inbound JWT) and the tokens we get on their behalf from identity.

``Inbound`` validates a gateway's users' JWTs (JWKS cached in ``JwtValidator``; a validated token is
remembered until it expires, so the signature is checked once per token, not per call, and only
for the authorizer it was checked against: once an admin changes the gateway's authorizer, every
replica checks the token again, at its next call).
``UserTokens`` turns (user JWT, target) into that user's token for the target, or an
``AuthorizationRequired`` carrying the URL the user must visit. The inbound token itself never
leaves for a target.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from gatehouse_contracts import rpc
from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.errors import GatehouseError, Unauthorized
from gatehouse_contracts.jwt import InvalidToken, JwtValidator

from .catalog import RoutedTarget

MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class User:
    """A gateway user: ``key`` is ``<iss>#<sub>``; ``token`` the inbound JWT (only ever sent to identity)."""

    key: str
    token: str
    expires_at: float


class Unauthenticated(Unauthorized):
    """No or a bad inbound token; ``invalid`` when a token was sent but refused."""

    def __init__(self, message: str, *, invalid: bool) -> None:
        super().__init__(message)
        self.invalid = invalid


class AuthorizationRequired(GatehouseError):
    """The user must consent at ``url`` before the target can be called."""

    def __init__(self, url: str, session_uri: str) -> None:
        super().__init__("authorization required")
        self.url = url
        self.session_uri = session_uri
        self.elicitation_id = hashlib.sha256(session_uri.encode()).hexdigest()[:32]


class ConsentEnded(GatehouseError):
    """The consent session a caller waited on failed (e.g. another account consented)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Inbound:
    def __init__(self, jwt: JwtValidator) -> None:
        self._jwt = jwt
        # (gateway id, token digest) -> (the authorizer configuration it was valid for, the user)
        self._known: dict[tuple[str, str], tuple[dict[str, Any], User]] = {}

    async def authenticate(self, gateway: dict[str, Any], authorization: str) -> User:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("a bearer token is required", invalid=False)
        cache_key = (gateway["_id"], _digest(token))
        config = gateway["authorizerConfiguration"]["customJWTAuthorizer"]
        known = self._known.get(cache_key)
        if (
            known is not None
            and (known[0] is config or known[0] == config)
            and known[1].expires_at > time.time()
        ):
            return known[1]
        try:
            claims = await self._jwt.validate(
                token,
                discovery_url=config["discoveryUrl"],
                audiences=config.get("allowedAudience", []),
                clients=config.get("allowedClients", []),
                scopes=config.get("allowedScopes", []),
            )
        except InvalidToken as exc:
            raise Unauthenticated(str(exc), invalid=True) from None
        user = User(f"{claims['iss']}#{claims['sub']}", token, float(claims["exp"]))
        if len(self._known) >= MAX_REMEMBERED:
            now = time.time()
            self._known = {k: v for k, v in self._known.items() if v[1].expires_at > now}
            if len(self._known) >= MAX_REMEMBERED:
                self._known.clear()
        self._known[cache_key] = (config, user)
        return user

    async def issuer(self, gateway: dict[str, Any]) -> str:
        config = gateway["authorizerConfiguration"]["customJWTAuthorizer"]
        return str((await self._jwt.metadata(config["discoveryUrl"]))["issuer"])


class UserTokens:
    """Users' tokens for targets, from identity. A token identity hands out is kept here until the
    moment identity says to stop using it (a margin before it expires), five minutes at most, and
    dropped at once on an upstream 401, a forced consent, a target change or ``identity.token_revoked``:
    a vault hit then costs no round trip."""

    MAX_SECONDS = 300.0

    def __init__(self, identity: IdentityClient) -> None:
        self._identity = identity
        self._workload_tokens: dict[tuple[str, str], tuple[str, float]] = {}
        # (gateway id, user key, target id, generation) -> (access token, use until)
        self._tokens: dict[tuple[str, str, str, int], tuple[str, float]] = {}

    def forget_target(self, target_id: str) -> None:
        self._tokens = {k: v for k, v in self._tokens.items() if k[2] != target_id}

    def forget_user(self, gateway_id: str, user_key: str) -> None:
        self._tokens = {k: v for k, v in self._tokens.items() if k[:2] != (gateway_id, user_key)}

    async def _workload_token(self, gateway_id: str, user: User) -> str:
        key = (gateway_id, _digest(user.token))
        cached = self._workload_tokens.get(key)
        if cached and cached[1] > time.time():
            return cached[0]
        answer = await self._identity.call(
            rpc.GetWorkloadAccessTokenForJWT(workload_name=gateway_id, user_token=user.token),
            rpc.WorkloadAccessToken,
        )
        if len(self._workload_tokens) >= MAX_REMEMBERED:
            self._workload_tokens.clear()
        # identity's tokens live 15 minutes; reuse one for at most 5, and never past the user's JWT
        self._workload_tokens[key] = (answer.workload_access_token, min(time.time() + 300, user.expires_at))
        return answer.workload_access_token

    async def token_for(
        self,
        target: RoutedTarget,
        user: User,
        *,
        return_url: str | None = None,
        force: bool = False,
        session_uri: str | None = None,
    ) -> str:
        """The user's access token for the target, or ``AuthorizationRequired``. With ``session_uri``
        (a consent this user was sent to): its token, ``AuthorizationRequired`` for the same session
        while the person is still at it, ``ConsentEnded`` if it failed (identity refuses one it does
        not know, or that expired, with ``Forbidden``)."""
        key = (target.gateway_id, user.key, target.target_id, target.generation)
        cached = self._tokens.pop(key, None) if force else self._tokens.get(key)
        if cached is not None and not force and session_uri is None and cached[1] > time.time():
            return cached[0]
        oauth = target.oauth or {}
        answer = await self._identity.call(
            rpc.GetResourceOauth2Token(
                workload_identity_token=await self._workload_token(target.gateway_id, user),
                resource_credential_provider_name=oauth["providerName"],
                scopes=oauth.get("scopes", []),
                oauth2_flow="USER_FEDERATION",
                resource_oauth2_return_url=return_url or oauth.get("defaultReturnUrl"),
                force_authentication=force,
                custom_parameters=oauth.get("customParameters", {}),
                resources=[target.endpoint],
                session_uri=session_uri,
            ),
            rpc.ResourceOauth2Token,
        )
        if answer.access_token:
            if len(self._tokens) >= MAX_REMEMBERED:
                self._tokens.clear()
            until = min(answer.expires_at or time.time(), time.time() + self.MAX_SECONDS)
            if until > time.time():
                self._tokens[key] = (answer.access_token, until)
            return answer.access_token
        if answer.session_status == "FAILED":
            raise ConsentEnded("the consent failed")
        if answer.authorization_url and answer.session_uri:
            raise AuthorizationRequired(answer.authorization_url, answer.session_uri)
        raise GatehouseError("identity answered with neither a token nor an authorization URL")
