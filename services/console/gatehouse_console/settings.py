"""The console's settings, read from the environment (see docs/configuration.md and docs/console.md)."""

from __future__ import annotations

import msgspec

from gatehouse_contracts.config import load_settings


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    console_host: str = "127.0.0.1"
    console_port: int = 8084
    # where browsers reach the console: its OIDC redirect URI and its OAuth return URL derive from it
    console_public_url: str = "http://127.0.0.1:8084"
    console_gateway_url: str = "http://127.0.0.1:8080"  # the admin API
    console_identity_url: str = "http://127.0.0.1:8081"
    console_audit_url: str = ""  # the audit service's GET /events; empty: no audit page
    # The console's own read access for users' pages (which gateways and targets exist); operators
    # still sign in with their own token. Empty: "My connections" is off.
    gatehouse_admin_token: str = ""
    # Users sign in here (authorization code + PKCE): the users' issuer of the CUSTOM_JWT gateways
    console_oidc_discovery_url: str = ""
    console_oidc_client_id: str = ""
    console_oidc_client_secret: str = ""
    console_oidc_scopes: str = "openid profile"
    # RFC 8707 resource asked for, so the access token is one the gateways accept (their audience)
    console_oidc_resource: str = ""
    # Operators may also sign in at the admin issuer (the one gateway and identity trust for admin
    # JWTs); the access token, for ADMIN_JWT_AUDIENCE, is then their admin credential
    admin_jwt_discovery_url: str = ""
    admin_jwt_audience: str = ""
    console_admin_oidc_client_id: str = ""
    console_admin_oidc_client_secret: str = ""
    console_admin_oidc_scopes: str = "openid"
    console_session_ttl_seconds: float = 8 * 3600
    console_http_timeout_seconds: float = 10.0
    log_level: str = "INFO"
    log_format: str = "text"

    @property
    def secure_cookies(self) -> bool:
        return self.console_public_url.startswith("https://")

    @property
    def users_enabled(self) -> bool:
        return bool(
            self.console_oidc_discovery_url and self.console_oidc_client_id and self.gatehouse_admin_token
        )

    @property
    def operators_oidc_enabled(self) -> bool:
        return bool(self.admin_jwt_discovery_url and self.console_admin_oidc_client_id)

    @classmethod
    def from_env(cls) -> Settings:
        return load_settings(cls)
