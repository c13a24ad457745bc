"""The audit subscriber's settings, read from the environment (see docs/audit.md's table)."""

from __future__ import annotations

from typing import Annotated

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
    # Events fetched and written together (one insert_many); fewer when fewer are waiting.
    audit_batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    # After a batch that was not full: how long the events that arrive meanwhile gather before the
    # next fetch (at most this much later in MongoDB; 0 = one write per fetch, however small).
    audit_batch_pause_seconds: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.2
    # Deliveries of one event while MongoDB refuses it (backoff 1, 2, 4 ... 60 s: about 45 minutes).
    audit_max_deliver: int = 50
    # opens GET /events (the trail over HTTP, for the console); empty: that route refuses everyone
    gatehouse_admin_token: str = ""
    log_level: str = "INFO"
    log_format: str = "text"  # or json: one JSON object per line

    @classmethod
    def from_env(cls) -> Settings:
        return load_settings(cls)
