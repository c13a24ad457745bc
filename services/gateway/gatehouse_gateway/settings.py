"""The gateway's settings, read from the environment (see the README's configuration table)."""

from __future__ import annotations

from gatehouse_contracts.config import AdminSettings, csv, load_settings
from gatehouse_contracts.mcp_client import (
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_HOST,
    MAX_RESPONSE_BYTES,
)
from gatehouse_contracts.netguard import DEFAULT_DENIED_NETWORKS


class Settings(AdminSettings, frozen=True, kw_only=True):
    gatehouse_session_secret: str
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str = ""
    nats_password: str = ""
    mongodb_url: str = "mongodb://127.0.0.1:27017"
    gatehouse_db: str = "gatehouse"
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    gateway_public_url: str = "http://127.0.0.1:8080"
    gateway_workers: int = 1  # uvicorn worker processes, each one behaving like a replica
    gateway_allowed_origins: str = ""
    gateway_tools_page_size: int = 10000
    gateway_upstream_timeout_seconds: float = 30.0
    gateway_session_max_age_seconds: int = 24 * 3600
    gateway_max_ended_sessions_per_user: int = 1000
    gateway_max_upstream_sessions: int = 10_000
    gateway_max_upstream_response_bytes: int = MAX_RESPONSE_BYTES
    gateway_max_connections: int = MAX_CONNECTIONS
    gateway_max_connections_per_target: int = MAX_CONNECTIONS_PER_HOST
    gateway_catalog_refresh_seconds: float = 30.0
    gateway_consent_wait_seconds: float = 300.0  # a 2026-07-28 call retried after consent waits this long
    gateway_sse_keepalive_seconds: float = 15.0  # between SSE comment lines while such a call waits
    identity_rpc_timeout_seconds: float = 5.0
    # tool search's optional embedding service (docs/search.md): its POST /v1/embeddings URL
    gateway_search_embeddings_url: str = ""
    gateway_search_embeddings_model: str = ""
    gateway_search_embeddings_api_key: str = ""  # sent as a bearer token; never logged
    gateway_search_embeddings_timeout_seconds: float = 1.0  # a query's embedding; then words only
    max_body_bytes: int = 1024 * 1024
    target_denied_networks: str = DEFAULT_DENIED_NETWORKS
    target_dns_servers: str = ""
    gatehouse_allow_insecure_http: bool = False
    gateway_jwks_max_bytes: int = 1024 * 1024
    gateway_metrics_enabled: bool = True  # the MCP request and tool call histograms on /metrics
    log_level: str = "INFO"
    log_format: str = "text"  # or json: one JSON object per line

    @property
    def allowed_origins(self) -> list[str]:
        return csv(self.gateway_allowed_origins)

    @classmethod
    def from_env(cls) -> Settings:
        settings = load_settings(cls)
        if len(settings.gatehouse_session_secret) < 16:
            raise ValueError("GATEHOUSE_SESSION_SECRET must be at least 16 characters")
        return settings
