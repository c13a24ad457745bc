"""NATS names: the event stream, event subjects, identity RPC subjects, broadcast subjects."""

from __future__ import annotations

from .events import Event, event_type

STREAM = "GATEHOUSE_EVENTS"
EVENTS_PREFIX = "gatehouse.events"
EVENTS_ALL = f"{EVENTS_PREFIX}.>"
# JetStream announces a new stream here; services waiting for the stream listen for it.
STREAM_CREATED_ADVISORY = f"$JS.EVENT.ADVISORY.STREAM.CREATED.{STREAM}"

RPC_PREFIX = "gatehouse.rpc.identity"
RPC_QUEUE = "identity"

# Core NATS (not stored): every gateway replica hears them.
MCP_SESSION_ENDED = "gatehouse.broadcast.mcp_session_ended"
MCP_REQUEST_CANCELLED = "gatehouse.broadcast.mcp_request_cancelled"

# The sync-worker's work-queue consumer, shared by all its replicas.
SYNC_WORKER_DURABLE = "sync-worker"
SYNC_WORKER_SUBJECTS = (
    f"{EVENTS_PREFIX}.target.created",
    f"{EVENTS_PREFIX}.target.updated",
    f"{EVENTS_PREFIX}.target.sync_requested",
    f"{EVENTS_PREFIX}.identity.token_issued",
)

# Catalog changes every gateway replica applies to its in-memory catalog.
CATALOG_SUBJECTS = (
    f"{EVENTS_PREFIX}.gateway.>",
    f"{EVENTS_PREFIX}.target.>",
)


def event_subject(event: Event | type[Event]) -> str:
    """``gatehouse.events.<aggregate>.<what>``, derived from the event's tag."""
    return f"{EVENTS_PREFIX}.{event_type(event)}"


def rpc_subject(operation: str, caller: str) -> str:
    """``gatehouse.rpc.identity.<Operation>.<caller>`` (config/nats.conf says who may publish which)."""
    return f"{RPC_PREFIX}.{operation}.{caller}"


def rpc_caller(subject: str) -> str:
    """The caller an RPC subject names (the last token)."""
    return subject.rsplit(".", 1)[-1]
