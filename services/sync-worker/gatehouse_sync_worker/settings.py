"""The sync-worker's settings, read from the environment (see the README's configuration table)."""

from __future__ import annotations

import msgspec

from gatehouse_contracts.config import load_settings
from gatehouse_contracts.mcp_client import MAX_RESPONSE_BYTES
from gatehouse_contracts.netguard import DEFAULT_DENIED_NETWORKS


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str = ""
    nats_password: str = ""
    mongodb_url: str = "mongodb://127.0.0.1:27017"
    gatehouse_db: str = "gatehouse"
    sync_worker_host: str = "127.0.0.1"
    sync_worker_health_port: int = 8082
    sync_timeout_seconds: float = 30.0
    sync_ack_wait_seconds: float = 15.0
    sync_max_tools: int = 5000
    sync_max_response_bytes: int = MAX_RESPONSE_BYTES
    sync_max_attempts: int = 5
    sync_retry_base_seconds: float = 1.0
    sync_concurrency: int = 8
    sync_pending_sweep_seconds: float = 15.0
    target_denied_networks: str = DEFAULT_DENIED_NETWORKS
    target_dns_servers: str = ""
    log_level: str = "INFO"
    log_format: str = "text"  # or json: one JSON object per line

    @classmethod
    def from_env(cls) -> Settings:
        return load_settings(cls)
