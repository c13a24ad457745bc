"""The audit subscriber (services/audit) as a process, and its tail command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

from gatehouse_contracts.subjects import STREAM

from .procs import Proc
from .services import SERVICE_ENV_PREFIXES, start_service

AUDIT_DURABLE = "audit"


def start_audit(stack: Any, db: str, label: str = "audit", **extra: str) -> Proc:
    """`python -m gatehouse_audit` on a free health port, as the audit NATS user; waits for /readyz.
    ``extra``: more of its settings (``AUDIT_ACK_WAIT_SECONDS="2"``)."""
    env = {
        "NATS_URL": stack.nats_url,
        "MONGODB_URL": stack.mongo_url,
        "AUDIT_DB": db,
        "LOG_LEVEL": stack.env["LOG_LEVEL"],
        **extra,
    }
    return start_service("audit", env, label=label)


async def audit_caught_up(js: Any, timeout: float = 30) -> None:
    """Until the audit consumer has acknowledged everything the stream holds right now (no event
    says so: the consumer's state is polled)."""
    last = (await js.stream_info(STREAM)).state.last_seq
    deadline = time.monotonic() + timeout
    while True:
        info = await js.consumer_info(STREAM, AUDIT_DURABLE)
        if info.ack_floor.stream_seq >= last:
            return
        assert time.monotonic() < deadline, f"audit consumer stuck: {info}"
        await asyncio.sleep(0.1)


def audit_tail_env(stack: Any, db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SERVICE_ENV_PREFIXES)}
    return {**env, "MONGODB_URL": stack.mongo_url, "AUDIT_DB": db}


def audit_tail(stack: Any, db: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "gatehouse_audit", "tail", *args],
        env=audit_tail_env(stack, db),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
