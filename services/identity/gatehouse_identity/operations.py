"""The registry of identity operations: name, request Struct, handler; HTTP and RPC both serve it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from gatehouse_contracts import rpc

from . import workloads
from .store import WorkloadStore


@dataclass(frozen=True)
class Deps:
    workloads: WorkloadStore


Handler = Callable[[Deps, Any], Awaitable[msgspec.Struct]]


def _workload(fn: Callable[[WorkloadStore, Any], Awaitable[msgspec.Struct]]) -> Handler:
    async def handler(deps: Deps, req: Any) -> msgspec.Struct:
        return await fn(deps.workloads, req)

    handler.__doc__ = fn.__doc__
    return handler


# name -> (request type, handler, summary); admin-only operations are served over HTTP with admin auth.
OPERATIONS: dict[str, tuple[type[msgspec.Struct], Handler, str]] = {
    "CreateWorkloadIdentity": (
        rpc.CreateWorkloadIdentity,
        _workload(workloads.create),
        "Create a workload identity.",
    ),
    "GetWorkloadIdentity": (rpc.GetWorkloadIdentity, _workload(workloads.get), "Get a workload identity."),
    "UpdateWorkloadIdentity": (
        rpc.UpdateWorkloadIdentity,
        _workload(workloads.update),
        "Replace a workload identity's allowed return URLs.",
    ),
    "DeleteWorkloadIdentity": (
        rpc.DeleteWorkloadIdentity,
        _workload(workloads.delete),
        "Delete a workload identity.",
    ),
    "ListWorkloadIdentities": (
        rpc.ListWorkloadIdentities,
        _workload(workloads.list_),
        "List workload identities.",
    ),
}
