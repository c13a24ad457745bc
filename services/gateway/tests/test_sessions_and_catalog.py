"""Pure gateway logic: signed session ids, the catalog's prefixing and paging."""

from __future__ import annotations

import time

import msgspec
import pytest

from gatehouse_contracts.lifecycle import Target, TargetStatus, target
from gatehouse_gateway import sessions
from gatehouse_gateway.catalog import Cursors, GatewayCatalog

SECRET = b"s" * 32
CURSORS = Cursors(SECRET)


def test_session_ids_verify_anywhere_and_resist_tampering() -> None:
    token = sessions.issue(SECRET, "gw-1", "2025-11-25", now=1000)
    claims = sessions.verify(SECRET, token, max_age=60, now=1030)
    assert claims is not None and claims.gateway_id == "gw-1" and claims.protocol_version == "2025-11-25"
    assert token.isascii() and all(0x21 <= ord(c) <= 0x7E for c in token)
    assert sessions.verify(b"other-secret-xxxxxxxx", token, max_age=60, now=1030) is None
    assert sessions.verify(SECRET, token, max_age=60, now=1061) is None  # expired
    payload, sig = token.split(".")
    assert sessions.verify(SECRET, payload + "." + sig[::-1], max_age=60, now=1030) is None
    assert sessions.verify(SECRET, "garbage", max_age=60, now=1030) is None
    assert sessions.verify(SECRET, "\xcd\xff." + sig, max_age=60, now=1030) is None  # non-ASCII header
    assert sessions.issue(SECRET, "gw-1", "2025-11-25", now=1000) != token  # random nonce


def _claims(nonce: str, user: str = "u", issued_at: float | None = None) -> sessions.SessionClaims:
    return sessions.SessionClaims("gw", "2025-11-25", int(issued_at or time.time()), nonce, user)


def test_ended_sessions_are_remembered_until_they_expire() -> None:
    ended = sessions.EndedSessions(max_age=60)
    ended.end(_claims("old", issued_at=time.time() - 61))  # already expired: leaves at once
    ended.end(_claims("n1"))
    assert "n1" in ended and "n2" not in ended and "old" not in ended and len(ended) == 1


def test_ended_sessions_per_user_are_capped() -> None:
    ended = sessions.EndedSessions(max_age=60, max_per_user=3)
    for i in range(3):
        assert not ended.full(_claims(f"a{i}"))
        ended.end(_claims(f"a{i}"))
    assert ended.full(_claims("a3"))
    assert not ended.full(_claims("b0", user="other"))  # another user has their own allowance
    ended.end(_claims("b0", user="other"))  # (another replica's DELETE is always remembered)
    assert len(ended) == 4


def _target(target_id: str, name: str, status: str, tools: list[str]) -> Target:
    return target(
        {
            "_id": target_id,
            "gatewayId": "gw",
            "name": name,
            "generation": 1,
            "spec": {"endpoint": f"http://{name}/mcp", "credentials": [{"credentialProviderType": "NONE"}]},
            "status": {"status": status},
            "toolsJson": msgspec.json.encode([{"name": t, "inputSchema": {"type": "object"}} for t in tools]),
            "createdAt": 0,
            "updatedAt": 0,
        }
    )


def _page(cat: GatewayCatalog, cursor: str | None, size: int) -> tuple[list[str], str | None]:
    """The tool names and next cursor of one tools/list answer."""
    answer = msgspec.json.decode(cat.answer(cursor, size, CURSORS) + b"7}")
    assert answer["jsonrpc"] == "2.0" and answer["id"] == 7
    return [t["name"] for t in answer["result"]["tools"]], answer["result"].get("nextCursor")


def _catalog() -> GatewayCatalog:
    cat = GatewayCatalog({"_id": "gw"})
    cat.targets = {
        "1": _target("1", "beta", "READY", ["x", "y"]),
        "2": _target("2", "alpha", "READY", ["a", "b", "c"]),
        "3": _target("3", "gamma", "FAILED", ["z"]),
    }
    cat.rebuild()
    return cat


def test_catalog_prefixes_ready_targets_only() -> None:
    cat = _catalog()
    names, _ = _page(cat, None, 100)
    assert names == ["alpha___a", "alpha___b", "alpha___c", "beta___x", "beta___y"]
    target, tool = cat.routes["beta___y"]
    assert (target.target_id, target.endpoint, tool) == ("1", "http://beta/mcp", "y")
    assert "gamma___z" not in cat.routes


def test_catalog_pages_survive_changes_between_pages() -> None:
    cat = _catalog()
    first, cursor = _page(cat, None, 2)
    assert first == ["alpha___a", "alpha___b"]
    assert cursor is not None
    # a target before the cursor disappears: the next page still starts after alpha___b
    del cat.targets["2"]
    cat.rebuild()
    second, cursor = _page(cat, cursor, 2)
    assert second == ["beta___x", "beta___y"]
    assert cursor is None
    with pytest.raises(ValueError):
        cat.answer("not-a-cursor", 2, CURSORS)


def test_only_issued_cursors_are_served_and_only_issued_pages_kept() -> None:
    cat = _catalog()
    _, cursor = _page(cat, None, 2)
    assert cursor is not None
    payload = cursor.split(".")[0]
    forged = [
        payload,  # unsigned
        payload + ".AAAA",  # badly signed
        Cursors(b"another-secret-xxxxx").make("gw", ("alpha", 0)),  # another gateway's key
        CURSORS.make("another-gateway", ("alpha", 0)),  # issued for another gateway
        "\u00e9." + cursor.split(".")[1],
        "x" * 5000,
    ]
    for bad in forged:
        with pytest.raises(ValueError):
            cat.answer(bad, 2, CURSORS)
    assert _page(cat, cursor, 2)[0] == ["alpha___c", "beta___x"]
    # a cursor issued before a change, pointing mid-page now: served, not kept
    assert _page(cat, CURSORS.make("gw", ("alpha", 0)), 2)[0] == ["alpha___b", "alpha___c"]
    assert sorted(cat._answers) == [0, 2]


def test_a_target_change_re_encodes_only_that_target() -> None:
    cat = _catalog()
    beta_before = cat._encoded["1"][1]
    renamed = _target("2", "delta", "READY", ["a"])
    cat.targets["2"] = renamed
    cat.rebuild()
    page = msgspec.json.decode(cat.answer(None, 100, CURSORS) + b"1}")["result"]["tools"]
    assert [t["name"] for t in page] == ["beta___x", "beta___y", "delta___a"]
    assert page[2] == {"name": "delta___a", "inputSchema": {"type": "object"}}
    assert cat._encoded["1"][1] is beta_before  # untouched target: its encoding is reused
    assert cat.routes["delta___a"][1] == "a" and "alpha___a" not in cat.routes
    copied = cat.copy({"_id": "gw", "name": "changed"})
    copied.rebuild()
    assert copied.answer(None, 100, CURSORS) == cat.answer(None, 100, CURSORS)


def test_ended_sessions_loaded_from_elsewhere_skip_the_expired() -> None:
    ended = sessions.EndedSessions(max_age=60)
    ended.load({"old": 1.0, "live": 4e9})
    assert "live" in ended and "old" not in ended


def test_the_catalog_knows_each_target_s_era_and_its_tools_mirrored_headers() -> None:
    region = {"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}}
    bad = {"type": "object", "properties": {"ratio": {"type": "number", "x-mcp-header": "Ratio"}}}
    tools = [
        {"name": "plain", "inputSchema": {"type": "object"}},
        {"name": "regional", "inputSchema": region},
        {"name": "bad", "inputSchema": bad},
    ]

    def synced(target_id: str, name: str, version: str) -> Target:
        return msgspec.structs.replace(
            _target(target_id, name, "READY", []),
            tools_json=msgspec.json.encode(tools),
            status=TargetStatus("READY", protocol_version=version),
        )

    modern = synced("1", "new", "2026-07-28")
    legacy = synced("2", "old", "2025-11-25")
    unknown = _target("3", "unsynced", "READY", ["t"])  # stored before eras were recorded
    cat = GatewayCatalog({"_id": "gw"})
    cat.targets = {"1": modern, "2": legacy, "3": unknown}
    cat.rebuild()
    target, _ = cat.routes["new___regional"]
    assert target.protocol_version == "2026-07-28"
    assert target.header_maps == {"regional": ((("region",), "Region"),)}
    assert "new___bad" not in cat.routes  # a modern tool with an invalid annotation is left out
    # a handshake-era target keeps such a tool (2026-07-28 clients drop it themselves); the valid
    # annotations are still what the gateway's own 2026-07-28 clients mirror
    old, _ = cat.routes["old___bad"]
    assert old.protocol_version == "2025-11-25" and old.header_maps == {
        "regional": ((("region",), "Region"),)
    }
    assert cat.routes["unsynced___t"][0].protocol_version is None
