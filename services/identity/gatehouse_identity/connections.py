"""A user's own connections: the vault entries of the user a JWT proves, listed (never their tokens)
and deleted (revoked at the provider where it offers RFC 7009 revocation).

The JWT is the credential: it is checked against the issuer the workload trusts (its
``jwtAuthorizer``, which a gateway registers), exactly as ``GetWorkloadAccessTokenForJWT`` checks
it, so a user sees and disconnects only their own entries, and an app (the console) that forwards
the user's token can do no more than the user.
"""

from __future__ import annotations

from gatehouse_contracts import rpc
from gatehouse_contracts.events import ConnectionsListed, new_event
from gatehouse_contracts.jwt import InvalidToken

from .deps import Caller, Deps
from .errors import NotFound, Unauthorized
from .tokens import SOURCE, user_from_jwt, vault_key
from .vault_tokens import drop_user_token

DISCONNECTED = "disconnected by the user"


async def _user(deps: Deps, workload_name: str, user_token: str) -> str:
    workload = await deps.workloads.get(workload_name)
    try:
        return await user_from_jwt(deps, workload, user_token)
    except InvalidToken as exc:
        raise Unauthorized(f"the user token is not valid: {exc}") from None


async def list_(deps: Deps, req: rpc.ListUserConnections, _: Caller) -> rpc.UserConnections:
    user = await _user(deps, req.workload_name, req.user_token)
    docs = await deps.tokens.of_user(req.workload_name, user)
    connections = [
        rpc.UserConnection(
            provider_name=doc["providerName"],
            scopes=doc["scopes"],
            resources=doc.get("resources", []),
            authorized_at=doc.get("authorizedAt") or doc["updatedAt"],
            expires_at=doc.get("expiresAt"),
        )
        for doc in docs
    ]
    await deps.publish(
        new_event(
            ConnectionsListed, source=SOURCE, workload_name=req.workload_name, user_id=user, count=len(docs)
        )
    )
    return rpc.UserConnections(user_id=user, connections=connections)


async def delete(deps: Deps, req: rpc.DeleteUserConnection, _: Caller) -> rpc.UserConnectionDeleted:
    user = await _user(deps, req.workload_name, req.user_token)
    provider = await deps.providers.store.by_name(req.provider_name)
    key = vault_key(req.workload_name, user, provider["_id"], sorted(set(req.scopes)), req.resources)
    revoked = await drop_user_token(deps, key, DISCONNECTED, revoke=True)
    if revoked is None:
        raise NotFound(f"no connection to {req.provider_name!r} with these scopes and resources")
    return rpc.UserConnectionDeleted(revoked_at_provider=revoked)
