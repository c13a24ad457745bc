"""The audit subscriber's settings, read from the environment (see docs/audit.md's table)."""

from __future__ import annotations

import msgspec

from gatehouse_contracts.config import load_settings


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str = ""
    nats_password: str = ""
    mongodb_url: str = "mongodb://127.0.0.1:27017"
    audit_db: str = "gatehouse_audit"
    audit_host: str = "127.0.0.1"
    audit_health_port: int = 8083
    audit_ack_wait_seconds: float = 30.0
    # Deliveries of one event while MongoDB refuses it (backoff 1, 2, 4 ... 60 s: about 45 minutes).
    audit_max_deliver: int = 50
    # opens GET /events (the trail over HTTP, for the console); empty: that route refuses everyone
    gatehouse_admin_token: str = ""
    log_level: str = "INFO"
    log_format: str = "text"  # or json: one JSON object per line

    @classmethod
    def from_env(cls) -> Settings:
        return load_settings(cls)
