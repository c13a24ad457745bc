"""Service identities on NATS: each service's user may only use its own subjects (config/nats.conf)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import harness
import nats
import nats.errors
import pytest

from gatehouse_contracts import rpc
from gatehouse_contracts.bus import IdentityClient
from gatehouse_contracts.errors import Unavailable
from gatehouse_contracts.events import TokenIssued, encode_event, new_event
from gatehouse_contracts.subjects import STREAM


async def _connect_as(stack: Any, user: str) -> tuple[Any, list[str]]:
    """A connection with a service's credentials, and the permission errors the server sends it."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        stack.nats_url,
        user=user,
        password=harness.NATS_PASSWORDS[user],
        error_cb=on_error,
        allow_reconnect=False,
    )
    return nc, errors


async def test_gateway_credentials_cannot_answer_identity_rpc_or_publish_identity_events(stack: Any) -> None:
    nc, errors = await _connect_as(stack, "gateway")
    admin = await nats.connect(harness.nats_admin_url(stack.nats_url))
    try:
        impostor_got: list[Any] = []

        async def impostor(msg: Any) -> None:
            impostor_got.append(msg)
            await msg.respond(b'{"type": "WorkloadIdentity", "name": "forged"}')

        await nc.subscribe("gatehouse.rpc.identity.>", cb=impostor)
        await nc.flush()
        name = f"wl-{uuid.uuid4().hex[:8]}"
        identity = IdentityClient(lambda: admin, "admin")
        made = await identity.call(rpc.CreateWorkloadIdentity(name=name), rpc.WorkloadIdentity)
        assert made.name == name and not impostor_got  # only identity answers
        assert any("permissions violation for subscription" in e.lower() for e in errors), errors

        event = new_event(
            TokenIssued, source="impostor", workload_name=name, user_id="u", provider_name="p", scopes=[]
        )
        with pytest.raises((nats.errors.TimeoutError, nats.errors.Error)):
            await nc.jetstream().publish(
                "gatehouse.events.identity.token_issued", encode_event(event), timeout=1
            )
        stored = await admin.jetstream().stream_info(STREAM)
        sub = await admin.jetstream().subscribe("gatehouse.events.identity.>", ordered_consumer=True)
        seen = []
        for _ in range(stored.state.messages):
            try:
                seen.append((await sub.next_msg(timeout=0.3)).data)
            except nats.errors.TimeoutError:
                break
        assert not any(b'"source":"impostor"' in m for m in seen)
        await identity.call(rpc.DeleteWorkloadIdentity(name=name), rpc.Deleted)
    finally:
        await nc.close()
        await admin.close()


async def test_sync_worker_credentials_cannot_ask_for_a_users_jwt_token(stack: Any) -> None:
    nc, errors = await _connect_as(stack, "sync-worker")
    try:
        request = rpc.GetWorkloadAccessTokenForJWT(workload_name="any", user_token="x.y.z")
        for caller in ("sync-worker", "gateway"):  # nor by pretending to be the gateway
            with pytest.raises(Unavailable):
                await IdentityClient(lambda: nc, caller, timeout=1).call(request, rpc.WorkloadAccessToken)
        await asyncio.sleep(0.2)
        assert sum("permissions violation for publish" in e.lower() for e in errors) >= 2, errors
    finally:
        await nc.close()


async def test_unknown_users_are_refused(stack: Any) -> None:
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(
            stack.nats_url,
            user="gateway",
            password="wrong",
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
        )
