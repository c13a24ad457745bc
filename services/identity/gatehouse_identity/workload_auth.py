"""Who may call identity's token endpoints over HTTP: the admin, or a workload with its own client
credentials (HTTP Basic ``<workloadName>:<clientSecret>``), for itself only.

Over NATS, the bus's per-service users already say who asks. Over HTTP, a workload access token
alone is not enough: a token seen once (in a log, a proxy, a browser) must not be replayable from
outside. An admin's workload identity gets a random client secret when it is created (shown once,
kept as a SHA-256 hash: it is 256 random bits, so a slow hash adds nothing); a gateway's own
workload identity, used over the bus only, has none.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

import msgspec
from starlette.requests import Request

from gatehouse_contracts import rpc

from .crypto import TokenSigner
from .errors import BadRequest, Forbidden, Unauthorized
from .store import WorkloadStore

CREDENTIALS_REQUIRED = (
    "credentials required: the admin token (Authorization: Bearer), or the workload's client "
    "credentials (Authorization: Basic <workloadName>:<clientSecret>)"
)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue_secret(store: WorkloadStore, workload: rpc.WorkloadIdentity) -> rpc.WorkloadIdentity:
    """Give an admin's workload identity a new client secret; the answer carries it, once."""
    if workload.owner == "gateway":
        raise BadRequest(f"workload identity {workload.name!r} belongs to a gateway and has no client secret")
    secret = secrets.token_urlsafe(32)
    await store.set_secret_hash(workload.name, _digest(secret))
    return msgspec.structs.replace(workload, client_secret=secret)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(name, secret) of an ``Authorization: Basic`` header, None without one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        raise Unauthorized("the Basic credentials are malformed") from None
    if not sep or not name or not secret:
        raise Unauthorized("the Basic credentials are malformed")
    return name, secret


async def authenticate(store: WorkloadStore, request: Request) -> str:
    """The workload whose client credentials the request carries; 401 for none or wrong ones."""
    credentials = basic_credentials(request)
    if credentials is None:
        raise Unauthorized(CREDENTIALS_REQUIRED)
    name, secret = credentials
    known = await store.secret_hash(name) if len(name) <= 255 else None
    # compare even for an unknown workload, so the answer's timing does not tell which exist
    if not hmac.compare_digest(_digest(secret), known or _digest("")) or known is None:
        raise Unauthorized("wrong workload client credentials")
    return name


def requested_workload(signer: TokenSigner, req: msgspec.Struct) -> str:
    """The workload a token request acts for: named, or the subject of its workload access token."""
    if isinstance(req, rpc.GetResourceOauth2Token):
        try:
            return signer.verify(req.workload_identity_token)[0]
        except ValueError as exc:
            raise Unauthorized(str(exc)) from None
    if isinstance(req, (rpc.GetWorkloadAccessToken, rpc.GetWorkloadAccessTokenForJWT)):
        return req.workload_name
    raise Forbidden("this operation does not take workload credentials")


def check_for_itself(signer: TokenSigner, workload: str, req: msgspec.Struct) -> None:
    """A workload authenticated by its client credentials asks for its own tokens only."""
    if requested_workload(signer, req) != workload:
        raise Forbidden(f"workload {workload!r} may get tokens for itself only")
