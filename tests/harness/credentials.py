"""The suite's fixed test credentials (never real secrets), and the secrets the tests have seen,
for the last test of the run to look for in every log and event."""

from __future__ import annotations

from typing import Any

# Fixed test credentials (never real secrets). Tests scanning logs for secrets should include them.
ADMIN_TOKEN = "gh-test-admin-token-6a1f0c3e9b7d4e25"
SESSION_SECRET = "gh-test-session-secret-2f8d1c7a5e3b4f90a6c2d8e1"
# NATS users of config/nats.conf (one per service, plus admin for the tests' own connections).
NATS_PASSWORDS = {
    "gateway": "gh-test-nats-gateway-4c1d",
    "identity": "gh-test-nats-identity-8e2a",
    "sync-worker": "gh-test-nats-sync-worker-1b7f",
    "audit": "gh-test-nats-audit-5d3c",
    "admin": "gh-test-nats-admin-9a6e",
}


# Identity's vault key ring (kid:base64 of 32 bytes) and workload-token signing keys (kid:secret).
VAULT_KEY = "dGVzdC12YXVsdC1rZXktMzItYnl0ZXMtbG9uZy0wMDE="
VAULT_KEYS = f"test1:{VAULT_KEY}"
TOKEN_SECRET = "gh-test-token-signing-secret-7c1e9a3f5b2d8e4a"
TOKEN_KEYS = f"test1:{TOKEN_SECRET}"


SEEN_SECRETS: set[str] = set()


def remember_secret(*values: Any) -> None:
    """Note values that must never show up in a log line or an event (tokens, codes, secrets)."""
    for value in values:
        if isinstance(value, str) and len(value) >= 8:
            SEEN_SECRETS.add(value)


def _remembering(fn: Any) -> Any:
    """Wrap a token helper so every token, code or secret it hands a test is remembered."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if isinstance(result, dict):
            remember_secret(
                *(v for k, v in result.items() if any(w in k for w in ("token", "code", "secret")))
            )
        elif isinstance(result, str):
            remember_secret(result)
        return result

    return wrapper


def static_secrets() -> list[str]:
    """The suite's own configured secrets."""
    return [ADMIN_TOKEN, SESSION_SECRET, VAULT_KEY, TOKEN_SECRET, *NATS_PASSWORDS.values()]
