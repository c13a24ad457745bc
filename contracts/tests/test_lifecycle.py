"""The target lifecycle: every transition's status document, the allowed table, the consent user id."""

from __future__ import annotations

import msgspec
import pytest

from gatehouse_contracts import lifecycle as lc
from gatehouse_contracts.lifecycle import PendingConsent, TargetStatus

NOW = 1_700_000_000.0
SESSION = PendingConsent("urn:session:1", "gw1TARGET0001" + "0" * 32, NOW + 600)


def _in(phase: str) -> TargetStatus:
    """A status in ``phase`` that already carries a previous sync's outcome."""
    return TargetStatus(phase, ["old"], lc.AUTHORIZED, NOW - 5, tool_count=3, observed_generation=2)


@pytest.mark.parametrize("phase", [lc.CREATING, lc.UPDATING])
def test_an_admin_call_starts_a_sync_in_its_phase(phase: str) -> None:
    status = lc.initial(phase, 4, tool_count=None, user_auth=False, now=NOW)
    assert status == TargetStatus(phase, [], lc.NO_AUTHORIZATION_REQUIRED, None, 0, 4)
    assert lc.allowed(None if phase == lc.CREATING else lc.READY, status.status)
    user_auth = lc.initial(phase, 4, tool_count=None, user_auth=True, now=NOW)
    assert user_auth.authorization_status == lc.NEEDS_AUTHORIZATION


def test_inline_tools_are_ready_at_once() -> None:
    status = lc.initial(lc.UPDATING, 2, tool_count=7, user_auth=True, now=NOW)
    assert status == TargetStatus(lc.READY, [], lc.NO_AUTHORIZATION_REQUIRED, NOW, 7, 2)
    assert lc.allowed(None, lc.READY) and lc.allowed(lc.FAILED, lc.READY)


def test_synchronizing_keeps_the_last_outcome_and_clears_the_reasons() -> None:
    before = TargetStatus(lc.READY, ["x"], lc.AUTHORIZED, NOW, tool_count=3, observed_generation=2)
    after = lc.synchronizing(before)
    assert after == msgspec.structs.replace(before, status=lc.SYNCHRONIZING, status_reasons=[])
    assert lc.allowed(lc.READY, lc.SYNCHRONIZING)


def test_deleting_is_only_shown() -> None:
    assert lc.deleting(_in(lc.FAILED)).status == lc.DELETING
    assert lc.DELETING not in lc.AT_REST and lc.allowed(lc.READY, lc.DELETING)


@pytest.mark.parametrize("consented", [False, True])
def test_ready_after_a_sync(consented: bool) -> None:
    status = lc.ready(5, NOW, consented=consented)
    assert status == TargetStatus(
        lc.READY, [], lc.AUTHORIZED if consented else lc.NO_AUTHORIZATION_REQUIRED, NOW, 5
    )
    assert status.pending is None and status.authorization_data is None


@pytest.mark.parametrize("phase", lc.IN_PROGRESS)
def test_a_retry_stays_in_the_phase(phase: str) -> None:
    status = lc.retrying(_in(phase), "Attempt 1 of 3 failed, retrying: down")
    assert status == msgspec.structs.replace(
        _in(phase), status_reasons=["Attempt 1 of 3 failed, retrying: down"]
    )
    assert lc.allowed(phase, status.status)


@pytest.mark.parametrize(
    "phase, ended",
    [
        (lc.CREATING, lc.FAILED),
        (lc.UPDATING, lc.UPDATE_UNSUCCESSFUL),
        (lc.SYNCHRONIZING, lc.SYNCHRONIZE_UNSUCCESSFUL),
        (lc.CREATE_PENDING_AUTH, lc.FAILED),
        (lc.UPDATE_PENDING_AUTH, lc.UPDATE_UNSUCCESSFUL),
        (lc.SYNCHRONIZE_PENDING_AUTH, lc.SYNCHRONIZE_UNSUCCESSFUL),
    ],
)
def test_a_failure_ends_in_the_phases_failure(phase: str, ended: str) -> None:
    before = msgspec.structs.replace(
        _in(phase), pending=SESSION, authorization_data=lc.AuthorizationData(lc.OAuth2Consent("u", "x"))
    )
    status = lc.failed(before, "why")
    assert status == msgspec.structs.replace(
        _in(phase), status=ended, status_reasons=["why"], pending=None, authorization_data=None
    )
    assert lc.failed_status(phase) == ended and lc.FAILED_AFTER[phase] == ended
    assert lc.allowed(phase, ended)


def test_an_unknown_phase_fails_as_a_create() -> None:
    assert lc.failed_status("SOMETHING") == lc.FAILED


@pytest.mark.parametrize("phase", lc.IN_PROGRESS)
def test_an_authorization_code_sync_waits_for_a_consent(phase: str) -> None:
    status = lc.awaiting_consent(_in(phase), "https://idp/authorize?x", SESSION)
    assert status == msgspec.structs.replace(
        _in(phase),
        status=lc.PENDING_FOR[phase],
        status_reasons=[],
        authorization_status=lc.NEEDS_AUTHORIZATION,
        authorization_data=lc.AuthorizationData(lc.OAuth2Consent("https://idp/authorize?x", SESSION.user_id)),
        pending=SESSION,
    )
    assert lc.allowed(phase, status.status)
    assert lc.allowed(status.status, lc.READY) and lc.allowed(status.status, lc.FAILED_AFTER[phase])


@pytest.mark.parametrize("pending", lc.PENDING)
def test_a_target_waiting_for_a_consent_refuses_admin_changes(pending: str) -> None:
    for new in (lc.UPDATING, lc.SYNCHRONIZING, lc.DELETING, lc.CREATING):
        assert not lc.allowed(pending, new)
    assert lc.TRANSITIONS[pending] == {lc.READY, lc.FAILED_AFTER[pending]}


def test_the_table_names_every_status_and_only_known_ones() -> None:
    stored = {*lc.IN_PROGRESS, *lc.AT_REST}
    assert set(lc.TRANSITIONS) == {None, *stored}
    assert set().union(*lc.TRANSITIONS.values()) == stored | {lc.DELETING}
    assert set(lc.AT_REST) == {lc.READY, *lc.UNSUCCESSFUL, *lc.PENDING}
    for settled in (lc.READY, *lc.UNSUCCESSFUL):  # only an admin moves these on
        assert lc.TRANSITIONS[settled] == {lc.UPDATING, lc.READY, lc.SYNCHRONIZING, lc.DELETING}
    assert not lc.allowed(lc.READY, lc.FAILED) and not lc.allowed(None, lc.UPDATING)


def test_the_consent_user_names_its_target() -> None:
    user = lc.consent_user_id("gw-1", "ABCDEFGHIJ")
    assert user.startswith("gw-1ABCDEFGHIJ") and len(user) == len("gw-1ABCDEFGHIJ") + 32
    assert user != lc.consent_user_id("gw-1", "ABCDEFGHIJ")  # fresh for every consent
    assert lc.consent_target(f"id:{user}") == "ABCDEFGHIJ"
    assert lc.consent_target(f"id:gABCDEFGHIJ{'0' * 32}") == "ABCDEFGHIJ"  # shortest: a 1-char gateway id


@pytest.mark.parametrize(
    "user", ["", "id:", "sub:gw-1ABCDEFGHIJ" + "0" * 32, "id:ABCDEFGHIJ" + "0" * 32, "alice"]
)
def test_other_users_name_no_target(user: str) -> None:
    assert lc.consent_target(user) is None


def test_a_stored_document_reads_as_a_target() -> None:
    doc = {
        "_id": "ABCDEFGHIJ",
        "gatewayId": "gw-1",
        "name": "t",
        "description": "",
        "spec": {
            "endpoint": "http://x/mcp",
            "inlinePayload": None,
            "credentials": [{"credentialProviderType": "NONE"}],
            "grantType": None,
            "defaultReturnUrl": None,
        },
        "generation": 2,
        "status": {
            "status": lc.CREATE_PENDING_AUTH,
            "pending": {"sessionUri": "s", "userId": "u", "expiresAt": 5},
        },
        "toolsJson": b"[]",
        "stamp": "x",
        "createdAt": NOW,
        "updatedAt": NOW,
        "outbox": b"event",
        "outboxId": "e1",
    }
    target = lc.target(doc)
    assert (target.id, target.gateway_id, target.generation, target.outbox) == (
        "ABCDEFGHIJ",
        "gw-1",
        2,
        b"event",
    )
    assert target.status.pending == PendingConsent("s", "u", 5.0)
    assert (
        target.status.tool_count == 0 and target.status.authorization_status == lc.NO_AUTHORIZATION_REQUIRED
    )
    stored = lc.stored(lc.ready(1, NOW))
    assert stored["status"] == lc.READY and stored["toolCount"] == 1 and stored["pending"] is None
    assert msgspec.convert(stored, TargetStatus) == lc.ready(1, NOW)
