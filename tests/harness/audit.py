"""The audit subscriber (services/audit) as a process, and its tail command."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from .procs import Proc
from .services import SERVICE_ENV_PREFIXES, start_service


def start_audit(stack: Any, db: str, label: str = "audit") -> Proc:
    """`python -m gatehouse_audit` on a free health port, as the audit NATS user; waits for /readyz."""
    env = {
        "NATS_URL": stack.nats_url,
        "MONGODB_URL": stack.mongo_url,
        "AUDIT_DB": db,
        "LOG_LEVEL": stack.env["LOG_LEVEL"],
    }
    return start_service("audit", env, label=label)


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
