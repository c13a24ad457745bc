"""Service identities on NATS: each service's user may only use its own subjects (config/nats.conf)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import harness
import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
from admin import Admin, offline_provider_body, unique, user_target_body
from rawmcp import initialize, post
from rawmcp import rpc as rpc_call

from gatehouse_contracts import rpc
from gatehouse_contracts.bus import IdentityClient, inbox_prefix
from gatehouse_contracts.errors import Forbidden, Unavailable
from gatehouse_contracts.events import TokenIssued, encode_event, new_event
from gatehouse_contracts.subjects import EVENTS_ALL, STREAM

SERVICES = ("gateway", "identity", "sync-worker", "audit")


async def _connect_as(stack: Any, user: str) -> tuple[Any, list[str]]:
    """A connection with a service's credentials and its own inbox prefix, as the service has, and
    the permission errors the server sends it."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        stack.nats_url,
        user=user,
        password=harness.NATS_PASSWORDS[user],
        error_cb=on_error,
        allow_reconnect=False,
        inbox_prefix=inbox_prefix(user),
    )
    return nc, errors


def _violations(errors: list[str], kind: str) -> int:
    return sum(f"permissions violation for {kind}" in e.lower() for e in errors)


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


async def test_wrong_passwords_are_refused(stack: Any) -> None:
    """Speaks the NATS protocol by hand: a failed nats-py connect leaks a socket, which this suite
    would report as an error."""
    host, port = stack.nats_url.removeprefix("nats://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        assert (await reader.readline()).startswith(b"INFO ")
        writer.write(b'CONNECT {"user": "gateway", "pass": "wrong", "verbose": false}\r\nPING\r\n')
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 5)
        assert answer.startswith(b"-ERR") and b"Authorization Violation" in answer, answer
    finally:
        writer.close()
        await writer.wait_closed()


async def test_identity_scopes_each_service_to_gateways_workloads(stack: Any) -> None:
    """Even on subjects it may use, a service acts only for gateways' workload identities, and the
    gateway never for a user named by id."""
    admin_nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    gateway_nc, _ = await _connect_as(stack, "gateway")
    sync_nc, _ = await _connect_as(stack, "sync-worker")
    try:
        admin = IdentityClient(lambda: admin_nc, "admin")
        gateway = IdentityClient(lambda: gateway_nc, "gateway")
        sync = IdentityClient(lambda: sync_nc, "sync-worker")
        own = f"gw-{uuid.uuid4().hex[:8]}"
        others = f"agent-{uuid.uuid4().hex[:8]}"
        assert (
            await gateway.call(rpc.CreateWorkloadIdentity(name=own), rpc.WorkloadIdentity)
        ).owner == "gateway"
        assert (
            await admin.call(rpc.CreateWorkloadIdentity(name=others), rpc.WorkloadIdentity)
        ).owner == "admin"
        for client in (gateway, sync):
            await client.call(rpc.GetWorkloadAccessToken(workload_name=own), rpc.WorkloadAccessToken)
            with pytest.raises(Forbidden):
                await client.call(rpc.GetWorkloadAccessToken(workload_name=others), rpc.WorkloadAccessToken)
        with pytest.raises(Forbidden):
            await gateway.call(rpc.DeleteWorkloadIdentity(name=others), rpc.Deleted)
        await sync.call(
            rpc.GetWorkloadAccessTokenForUserId(workload_name=own, user_id="u"), rpc.WorkloadAccessToken
        )
        # the gateway may not (and NATS does not even let it publish that request)
        with pytest.raises((Forbidden, Unavailable)):
            await IdentityClient(lambda: gateway_nc, "gateway", timeout=1).call(
                rpc.GetWorkloadAccessTokenForUserId(workload_name=own, user_id="u"), rpc.WorkloadAccessToken
            )
        await admin.call(rpc.DeleteWorkloadIdentity(name=others), rpc.Deleted)
        await gateway.call(rpc.DeleteWorkloadIdentity(name=own), rpc.Deleted)
    finally:
        for nc in (admin_nc, gateway_nc, sync_nc):
            await nc.close()


async def _user_auth_gateway(stack: Any, admin: Admin, oidc: Any, audience: str) -> dict[str, Any]:
    """A CUSTOM_JWT gateway with an authorization-code target (tools given inline, so READY at once)."""
    provider = unique("as")
    async with httpx.AsyncClient(base_url=stack.identity_url, headers=stack.admin_headers) as identity:
        made = await identity.post(
            "/identities/CreateOauth2CredentialProvider", json=offline_provider_body(provider)
        )
        assert made.status_code == 201, made.text
    gateway = await admin.create_jwt_gateway(oidc.url, audience)
    tools = [{"name": "whoami", "description": "who", "inputSchema": {"type": "object"}}]
    body = user_target_body(
        "lane", "http://127.0.0.1:1/mcp", provider, "http://127.0.0.1:1/back", inline_tools=tools
    )
    await admin.create_target(gateway["gatewayId"], body)
    return gateway


async def test_no_service_can_read_another_services_replies(stack: Any, oidc_provider: Any) -> None:
    """Every user once could subscribe to ``_INBOX.>`` and read identity's replies (workload tokens,
    users' upstream tokens). Now each subscribes to its own prefix only, while real RPCs go on."""
    admin_nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    spies = {user: await _connect_as(stack, user) for user in ("audit", "sync-worker")}
    gateway_nc, _ = await _connect_as(stack, "gateway")
    overheard: list[bytes] = []
    seen_by_operator: list[bytes] = []

    async def spy(msg: Any) -> None:
        overheard.append(msg.data)

    try:
        for user, (nc, errors) in spies.items():
            for others in ("_INBOX.>", "_INBOX.gateway.>", "_INBOX.identity.>", "_INBOX.*.>", ">"):
                await nc.subscribe(others, cb=spy)
            await nc.flush()
            await asyncio.sleep(0.2)  # the server's -ERR lines arrive after the PONG
            assert _violations(errors, "subscription") == 5, (user, errors)

        async def operator(msg: Any) -> None:
            seen_by_operator.append(msg.data)

        # the operator (admin user) may watch the gateway's prefix: the replies do travel there
        await admin_nc.subscribe(f"{inbox_prefix('gateway')}.>", cb=operator)
        await admin_nc.flush()
        async with Admin(stack.gateway_url, stack.admin_headers) as admin:
            # the gateway process creates its workload identity at identity over RPC
            gateway_id = (await admin.create_gateway())["gatewayId"]
            # and a workload token comes back to a connection with the gateway's credentials
            gateway = IdentityClient(lambda: gateway_nc, "gateway")
            token = await gateway.call(
                rpc.GetWorkloadAccessToken(workload_name=gateway_id), rpc.WorkloadAccessToken
            )
            assert token.workload_access_token
            assert (await admin.http.delete(f"/gateways/{gateway_id}")).status_code == 202

            # a tools/call: the gateway process asks identity for the user's workload access token
            # and resource token (none yet: the answer is the URL to consent at)
            audience = f"https://gatehouse.test/{uuid.uuid4().hex[:8]}"
            gateway = await _user_auth_gateway(stack, admin, oidc_provider, audience)
            user_jwt = harness.user_tokens(oidc_provider, "U1", resource=audience)["access_token"]
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {user_jwt}"}) as http:
                r = await post(http, gateway["gatewayUrl"], initialize())
                assert r.status_code == 200, r.text
                call = {"name": "lane___whoami", "arguments": {}}
                answer = await rpc_call(
                    http, gateway["gatewayUrl"], r.headers["mcp-session-id"], "tools/call", call
                )
            assert answer["error"]["code"] == -32042, answer
        await admin_nc.flush()
        assert any(token.workload_access_token.encode() in m for m in seen_by_operator)
        assert any(b"WorkloadIdentity" in m for m in seen_by_operator)  # the gateway process's own RPCs
        # ours, and the gateway process's for U1 during the tools/call; then its resource-token answer
        assert sum(b'"type":"WorkloadAccessToken"' in m for m in seen_by_operator) >= 2
        assert any(
            b'"type":"ResourceOauth2Token"' in m and b"authorizationUrl" in m for m in seen_by_operator
        )
        assert not overheard
    finally:
        for nc, _ in spies.values():
            await nc.close()
        await gateway_nc.close()
        await admin_nc.close()


async def test_no_service_can_change_purge_or_delete_the_event_stream(stack: Any) -> None:
    """Only identity may create GATEHOUSE_EVENTS (when missing) and only the admin user change it:
    every service's attempt to shrink, re-point, purge, delete or edit the audit trail is refused."""
    admin_nc = await nats.connect(harness.nats_admin_url(stack.nats_url))
    conns = {user: await _connect_as(stack, user) for user in SERVICES}
    try:
        admin_js = admin_nc.jetstream()
        before = await admin_js.stream_info(STREAM)
        assert before.state.messages > 0
        for user, (nc, errors) in conns.items():
            js = nc.jetstream(timeout=0.5)  # a refused request is never answered
            tiny = before.config.evolve(max_msgs=1)
            elsewhere = before.config.evolve(subjects=["nowhere.>"])
            attempts = [
                js.update_stream(tiny),
                js.update_stream(elsewhere),
                js.purge_stream(STREAM),
                js.delete_stream(STREAM),
                js.delete_msg(STREAM, before.state.first_seq),
                js.add_stream(name="SHADOW", subjects=[EVENTS_ALL]),
            ]
            for attempt in attempts:
                with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
                    await attempt
            expected = 6
            if user == "identity":
                # identity may create the stream, but a CREATE differing from the stream is refused
                with pytest.raises(nats.js.errors.BadRequestError):
                    await js.add_stream(tiny)
            else:
                with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
                    await js.add_stream(tiny)
                expected += 1
            await nc.flush()
            await asyncio.sleep(0.2)
            assert _violations(errors, "publish") == expected, (user, errors)
        after = await admin_js.stream_info(STREAM)
        assert after.config == before.config
        assert after.state.first_seq == before.state.first_seq
        assert after.state.messages >= before.state.messages
        names = [info.config.name for info in await admin_js.streams_info()]
        assert STREAM in names and "SHADOW" not in names
    finally:
        for nc, _ in conns.values():
            await nc.close()
        await admin_nc.close()


def test_services_wait_for_identity_to_create_the_stream(tmp_path: Any, mongo_url: str, run_id: str) -> None:
    """On a new NATS the stream does not exist yet: the services that may not create it wait (and
    say so) instead of crashing, and go on as soon as identity has created it."""
    nats_server = harness.start_nats(tmp_path)
    assert nats_server.url
    env = harness.service_env(
        nats_server.url,
        mongo_url,
        run_id=f"{run_id}_stream",
        AUDIT_DB=f"gatehouse_audit_test_{run_id}_stream",
    )
    waiting = [harness.start_service(name, env, wait=False) for name in ("gateway", "sync-worker", "audit")]
    started = list(waiting)
    try:
        for proc in waiting:
            proc._wait(
                lambda p=proc: "waiting for the event stream GATEHOUSE_EVENTS" in p.log_text(),
                "the log line",
                60,
            )
            assert proc.alive
        started.append(harness.start_service("identity", env))
        for proc in waiting:
            proc.wait_ready()
        assert "created the event stream GATEHOUSE_EVENTS" in started[-1].log_text()
    finally:
        for proc in reversed(started):
            proc.stop()
        nats_server.stop()
