"""The registry of identity operations: one request Struct, one handler each; HTTP and the bus serve them.

``admin``: over HTTP only with the admin token (over the bus every caller is a service).
``workload``: over HTTP also with the workload's own client credentials, for itself only
(``workload_auth``).
``rpc``: also offered as ``gatehouse.rpc.identity.<name>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from gatehouse_contracts import rpc

from . import connections, tokens, workloads
from .deps import Caller, Deps

Handler = Callable[[Deps, Any, Caller], Awaitable[msgspec.Struct]]


@dataclass(frozen=True)
class Operation:
    request: type[msgspec.Struct]
    handler: Handler
    summary: str
    path: str
    admin: bool = True
    workload: bool = False
    rpc: bool = True
    created: bool = False  # answers 201 over HTTP


def _providers(method: str) -> Handler:
    async def handler(deps: Deps, req: Any, caller: Caller) -> msgspec.Struct:
        return await getattr(deps.providers, method)(req)  # type: ignore[no-any-return]

    return handler


def _op(request: type[msgspec.Struct], handler: Handler, summary: str, **options: Any) -> Operation:
    return Operation(
        request, handler, summary, options.pop("path", f"/identities/{request.__name__}"), **options
    )


OPERATIONS: dict[str, Operation] = {
    op.request.__name__: op
    for op in (
        _op(
            rpc.CreateWorkloadIdentity,
            workloads.create,
            "Create a workload identity (an admin's comes with its client secret, shown once).",
            created=True,
        ),
        _op(
            rpc.RotateWorkloadIdentitySecret,
            workloads.rotate_secret,
            "A new client secret for an admin's workload identity (shown once; the old one stops working).",
            rpc=False,
        ),
        _op(rpc.GetWorkloadIdentity, workloads.get, "Get a workload identity."),
        _op(
            rpc.UpdateWorkloadIdentity,
            workloads.update,
            "Replace a workload identity's settings.",
        ),
        _op(rpc.DeleteWorkloadIdentity, workloads.delete, "Delete a workload identity."),
        _op(rpc.ListWorkloadIdentities, workloads.list_, "List workload identities."),
        _op(
            rpc.CreateOauth2CredentialProvider,
            _providers("create"),
            "Register an OAuth 2.0 client at a provider.",
            rpc=False,
            created=True,
        ),
        _op(rpc.GetOauth2CredentialProvider, _providers("get"), "Get a credential provider.", rpc=False),
        _op(
            rpc.UpdateOauth2CredentialProvider,
            _providers("update"),
            "Replace a credential provider.",
            rpc=False,
        ),
        _op(
            rpc.DeleteOauth2CredentialProvider,
            _providers("delete"),
            "Delete a credential provider.",
            rpc=False,
        ),
        _op(rpc.ListOauth2CredentialProviders, _providers("list"), "List credential providers.", rpc=False),
        _op(
            rpc.GetWorkloadAccessToken,
            tokens.workload_token,
            "A workload access token without a user.",
            workload=True,
        ),
        _op(
            rpc.GetWorkloadAccessTokenForJWT,
            tokens.workload_token_for_jwt,
            "A workload access token for the user a JWT proves.",
            workload=True,
        ),
        _op(
            rpc.GetWorkloadAccessTokenForUserId,
            tokens.workload_token_for_user_id,
            "A workload access token for a user named by id (admin and services only).",
        ),
        _op(
            rpc.GetResourceOauth2Token,
            tokens.resource_token,
            "A resource access token: M2M, from the vault, or a new authorization session.",
            path="/identities/oauth2/token",
            workload=True,
        ),
        _op(
            rpc.CompleteResourceTokenAuth,
            tokens.complete,
            "Finish a consent: only the user who started the session may.",
            admin=False,
        ),
        _op(
            rpc.ListUserConnections,
            connections.list_,
            "The caller's own connections (vault entries, never tokens); the user token authenticates.",
            admin=False,
            rpc=False,
        ),
        _op(
            rpc.DeleteUserConnection,
            connections.delete,
            "Disconnect: drop the caller's own token, revoked at the provider where it supports RFC 7009.",
            admin=False,
            rpc=False,
        ),
    )
}
