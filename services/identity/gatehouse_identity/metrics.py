"""Identity's Prometheus metrics, counted from the events it publishes (one place: whatever identity
tells the audit trail, it counts) and from its RPC answers; the vault's size is counted when scraped.

Labels are bounded: operation names, error codes, the ``AuthorizationFailure`` reasons. Never a
user, a workload, a provider's own error text or a token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge

from gatehouse_contracts.events import AuthorizationFailed, Event, TokenIssued, TokenRefreshed, TokenRevoked

from .store import TokenStore

REQUESTS = Counter(
    "gatehouse_identity_requests_total",
    "Identity's RPC answers by operation and outcome (ok, or the error code: a refused token "
    "request is AccessDeniedException)",
    ["operation", "outcome"],
)
CONSENTS_STARTED = Counter(
    "gatehouse_identity_consent_sessions_started_total", "Authorization (consent) sessions started"
)
TOKENS_ISSUED = Counter(
    "gatehouse_identity_tokens_issued_total",
    "Users' tokens stored after a completed consent session (the sessions completed)",
)
TOKENS_REFRESHED = Counter(
    "gatehouse_identity_tokens_refreshed_total", "Stored tokens refreshed at the provider"
)
TOKENS_REVOKED = Counter(
    "gatehouse_identity_tokens_revoked_total",
    "Stored tokens dropped (expired, refused at refresh, disconnected), by whether the provider "
    "confirmed a revocation",
    ["at_provider"],
)
FAILURES = Counter(
    "gatehouse_identity_authorization_failures_total",
    "Consent sessions failed and completions refused, by reason (events.AuthorizationFailure)",
    ["reason"],
)
VAULT = Gauge("gatehouse_identity_vault_tokens", "Tokens in the vault (counted from MongoDB when scraped)")


def counted(publish: Callable[[Event], Awaitable[None]]) -> Callable[[Event], Awaitable[None]]:
    """``publish``, counting the event first (also while NATS is down)."""

    async def counting(event: Event) -> None:
        if isinstance(event, TokenIssued):
            TOKENS_ISSUED.inc()
        elif isinstance(event, TokenRefreshed):
            TOKENS_REFRESHED.inc()
        elif isinstance(event, TokenRevoked):
            TOKENS_REVOKED.labels("true" if event.revoked_at_provider else "false").inc()
        elif isinstance(event, AuthorizationFailed):
            FAILURES.labels(event.reason).inc(event.count)
        await publish(event)

    return counting


def vault_size(tokens: TokenStore) -> Callable[[], Awaitable[None]]:
    async def scrape() -> None:
        VAULT.set(await tokens.count())

    return scrape
