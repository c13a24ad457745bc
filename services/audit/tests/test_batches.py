"""What a batch write's answer means for each of its events, and the redelivery backoff."""

from __future__ import annotations

import asyncio

import nats.errors
import pytest

from gatehouse_audit import consumer
from gatehouse_audit.consumer import retry_delay
from gatehouse_audit.settings import Settings
from gatehouse_audit.store import refused_writes
from gatehouse_contracts.errors import GatehouseError


def _error(index: int, code: int, errmsg: str = "") -> dict[str, object]:
    return {"index": index, "code": code, "errmsg": errmsg, "op": {"_id": f"e{index}"}}


def test_duplicates_are_stored_already_and_other_write_errors_are_refusals() -> None:
    details = {
        "writeErrors": [_error(0, 11000, "E11000 duplicate key"), _error(2, 2, "invalid key: $bad")],
        "writeConcernErrors": [],
        "nInserted": 2,
    }
    assert refused_writes(details) == {2: "the database refused it (code 2): invalid key: $bad"}


def test_a_batch_of_duplicates_only_is_a_success() -> None:
    details = {"writeErrors": [_error(i, 11000) for i in range(3)], "writeConcernErrors": []}
    assert refused_writes(details) == {}


def test_a_write_concern_error_fails_the_whole_write() -> None:
    details = {"writeErrors": [], "writeConcernErrors": [{"code": 64, "errmsg": "waiting for replication"}]}
    with pytest.raises(GatehouseError, match="did not confirm"):
        refused_writes(details)


def test_backoff_doubles_up_to_a_minute() -> None:
    assert [retry_delay(a) for a in (1, 2, 3, 6, 7, 50)] == [1, 2, 4, 32, 60, 60]


class _Sub:
    """A pull subscription whose fetches answer from a script: a list, or an exception to raise."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.done = asyncio.Event()

    async def fetch(self, batch: int, timeout: float) -> list[object]:
        if not self.answers:
            self.done.set()
            await asyncio.Event().wait()  # a quiet stream from now on
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, list)
        return answer


async def test_the_loop_goes_on_through_timeouts_refusals_and_surprises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumer, "RETRY_SECONDS", 0)
    stored: list[list[object]] = []
    audit = consumer.AuditConsumer(None, Settings(audit_batch_pause_seconds=0))  # type: ignore[arg-type]

    async def store_batch(msgs: list[object]) -> None:
        if msgs == ["boom"]:
            raise RuntimeError("unexpected")
        stored.append(msgs)

    monkeypatch.setattr(audit, "store_batch", store_batch)
    sub = _Sub(
        TimeoutError(),  # asyncio's, which nats-py's fetch raises too
        nats.errors.TimeoutError(),
        nats.errors.ConnectionClosedError(),
        [],
        ["boom"],
        ["a", "b"],
    )

    async def subscribe(_: object) -> _Sub:
        return sub

    monkeypatch.setattr(audit, "_subscribe", subscribe)
    running = asyncio.create_task(audit.run(None))  # type: ignore[arg-type]
    await asyncio.wait_for(sub.done.wait(), 5)
    running.cancel()
    assert stored == [["a", "b"]]
