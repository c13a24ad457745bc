"""Identity's settings, read from the environment (see the README's configuration table)."""

from __future__ import annotations

from gatehouse_contracts.config import AdminSettings, load_settings
from gatehouse_contracts.netguard import DEFAULT_DENIED_NETWORKS


class Settings(AdminSettings, frozen=True, kw_only=True):
    identity_vault_keys: str
    """``kid:base64-32-bytes`` comma-separated; the last one encrypts, all decrypt (rotation)."""
    identity_token_keys: str
    """``kid:secret`` comma-separated; the last one signs workload access tokens, all verify."""
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str = ""
    nats_password: str = ""
    mongodb_url: str = "mongodb://127.0.0.1:27017"
    identity_db: str = "gatehouse_identity"
    identity_host: str = "127.0.0.1"
    identity_port: int = 8081
    identity_public_url: str = "http://127.0.0.1:8081"
    events_max_age_seconds: float = 30 * 24 * 3600
    events_max_bytes: int = 1024**3
    events_replicas: int = 1
    max_body_bytes: int = 1024 * 1024
    identity_session_ttl_seconds: float = 600
    identity_workload_token_ttl_seconds: float = 900
    identity_http_timeout_seconds: float = 10
    identity_http_max_bytes: int = 1024 * 1024
    target_denied_networks: str = DEFAULT_DENIED_NETWORKS
    target_dns_servers: str = ""
    gatehouse_allow_insecure_http: bool = False
    identity_miss_events_interval_seconds: float = 60
    log_level: str = "INFO"
    log_format: str = "text"  # or json: one JSON object per line

    @classmethod
    def from_env(cls) -> Settings:
        return load_settings(cls)
