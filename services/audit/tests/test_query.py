"""tail's filters: --since parsing and the MongoDB query built from the options."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gatehouse_audit.query import BadFilter, Filters, mongo_query, parse_since, type_condition
from gatehouse_audit.tail import add_arguments, request_from

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1.5h", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
    ],
)
def test_since_as_an_age(text: str, ago: timedelta) -> None:
    assert parse_since(text, NOW) == NOW - ago


def test_since_as_a_time() -> None:
    assert parse_since("2025-05-31T08:30:00Z", NOW) == datetime(2025, 5, 31, 8, 30, tzinfo=UTC)
    assert parse_since("2025-05-31", NOW) == datetime(2025, 5, 31, tzinfo=UTC)
    # a time without a zone is UTC, like every time tail prints; one with a zone is converted
    assert parse_since("2025-05-31T08:30:00", NOW) == datetime(2025, 5, 31, 8, 30, tzinfo=UTC)
    cest = timezone(timedelta(hours=2))
    assert parse_since("2025-05-31T10:30:00+02:00", NOW) == datetime(2025, 5, 31, 10, 30, tzinfo=cest)
    assert parse_since("2025-05-31T10:30:00+02:00", NOW).tzinfo == UTC


@pytest.mark.parametrize("text", ["", "yesterday", "10", "10x", "-5m", "2025-13-01"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(BadFilter, match="--since"):
        parse_since(text, NOW)


def test_no_filters_match_everything() -> None:
    assert mongo_query(Filters()) == {}


def test_every_filter_narrows_the_query() -> None:
    query = mongo_query(
        Filters(gateway="gw-1", target="T1", user="iss#alice", types=("tool.invoked",), since=NOW)
    )
    assert query == {
        "$or": [{"gatewayId": "gw-1"}, {"workloadName": "gw-1"}],
        "targetId": "T1",
        "user": "iss#alice",
        "type": "tool.invoked",
        "occurredAt": {"$gte": NOW},
    }


def test_several_exact_types_are_one_in() -> None:
    assert type_condition(("gateway.created", "tool.invoked")) == {"$in": ["gateway.created", "tool.invoked"]}


def _matches(condition: object, kind: str) -> bool:
    assert isinstance(condition, dict)
    return re.search(condition["$regex"], kind) is not None


def test_type_globs_become_an_anchored_regex() -> None:
    identity = type_condition(("identity.*",))
    assert identity == {"$regex": r"^(?:identity\..*)$"}
    assert _matches(identity, "identity.token_issued")
    assert not _matches(identity, "identityXtoken")  # the dot is literal
    assert not _matches(identity, "tool.invoked")

    mixed = type_condition(("target.sync_*", "tool.invoked", "gateway.?reated"))
    for kind in ("target.sync_failed", "target.sync_requested", "tool.invoked", "gateway.created"):
        assert _matches(mixed, kind), kind
    for kind in ("target.synchronized", "tool.invoked.more", "xtool.invoked", "gateway.updated"):
        assert not _matches(mixed, kind), kind


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_to_request() -> None:
    request = request_from(_args("--gateway", "gw", "--type", "target.*", "--since", "2h", "--json"), NOW)
    assert request.query == {
        "$or": [{"gatewayId": "gw"}, {"workloadName": "gw"}],
        "type": {"$regex": r"^(?:target\..*)$"},
        "occurredAt": {"$gte": NOW - timedelta(hours=2)},
    }
    assert request.as_json and not request.follow and request.limit == 50

    follow = request_from(_args("--follow", "--limit", "5", "--type", "a", "--type", "b"), NOW)
    assert follow.follow and follow.limit == 5 and follow.query == {"type": {"$in": ["a", "b"]}}


@pytest.mark.parametrize("argv", [("--limit", "0"), ("--interval", "0"), ("--since", "soon")])
def test_command_line_refusals(argv: tuple[str, ...]) -> None:
    with pytest.raises(BadFilter):
        request_from(_args(*argv), NOW)
