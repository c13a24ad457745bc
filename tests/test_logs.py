"""A service started with LOG_FORMAT=json writes nothing but JSON lines, start-up to shutdown."""

from __future__ import annotations

import json
from typing import Any

import harness


def test_a_service_with_json_logs_writes_only_json_lines(stack: Any) -> None:
    env = {
        "NATS_URL": stack.nats_url,
        "MONGODB_URL": stack.mongo_url,
        "AUDIT_DB": f"{stack.gatehouse_db}_json_logs",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    proc = harness.start_service("audit", env, label="audit-json-logs")
    proc.stop()
    lines = [
        line
        for line in proc.log_path.read_text().splitlines()
        if line and not line.startswith("----- harness")
    ]
    assert lines, "the service logged nothing"
    records = [json.loads(line) for line in lines]  # every line parses
    assert {r["service"] for r in records} == {"audit"}
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["logger"] == "gatehouse.audit" and "consuming" in r["message"] for r in records), records
