"""What a batch write's answer means for each of its events, and the redelivery backoff."""

from __future__ import annotations

import pytest

from gatehouse_audit.consumer import retry_delay
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
