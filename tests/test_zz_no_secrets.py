"""The last test of the run: no secret, token, code or verifier in any log line or any event.

It looks for every secret the suite configured (admin token, session secret, vault and signing
keys, NATS passwords, the test authorization server's client secrets and passwords) and every
token or code a test was handed (``harness.SEEN_SECRETS``), in every process log of the run and
in every event stored on the bus. (Identity's own tests also check codes and PKCE verifiers they
read from the vault.)
"""

from __future__ import annotations

from typing import Any

import harness
import nats
import nats.errors
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from gatehouse_contracts.subjects import STREAM

# Last of the whole run (tests/conftest.py moves run_last tests to the end), not by its file name.
pytestmark = pytest.mark.run_last


async def _all_events(nats_url: str) -> list[bytes]:
    nc = await nats.connect(harness.nats_admin_url(nats_url))
    try:
        js = nc.jetstream()
        total = (await js.stream_info(STREAM)).state.messages
        sub = await js.subscribe(
            "gatehouse.events.>",
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        found = []
        while len(found) < total:
            try:
                found.append((await sub.next_msg(timeout=2)).data)
            except nats.errors.TimeoutError:
                break
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def test_no_secret_in_any_log_or_event(stack: Any, oidc_provider: Any) -> None:
    secrets = {
        s
        for s in (*harness.static_secrets(), *harness.oidc_secrets(oidc_provider), *harness.SEEN_SECRETS)
        if len(s) >= 8
    }
    assert len(secrets) > 10
    leaks = []
    for path in harness.log_files():
        text = path.read_text(errors="replace")
        leaks += [f"{path.name}: {s[:6]}…" for s in secrets if s in text]
    events = await _all_events(stack.nats_url)
    assert events  # the run stored events
    for data in events:
        text = data.decode(errors="replace")
        leaks += [f"event {text[:60]}: {s[:6]}…" for s in secrets if s in text]
    assert not leaks, leaks
