"""A ``tools/call`` answered while it runs (either era): the target's progress on the request's own
SSE answer, and, in 2026-07-28, the call cancelled when the client leaves.

The answer stays plain JSON until there is something to stream: the target's first
``notifications/progress`` starts an SSE answer (``text/event-stream``) carrying each progress
notification, with the progress token the client sent, then the result. A call that reports no
progress is answered with JSON, as any other. Only a client that sent a ``progressToken`` and
accepts ``text/event-stream`` gets this answer (both eras allow an SSE answer to a POST).

Cancellation by disconnect is 2026-07-28's ("closing the response stream cancels the request"),
noticed from ``WATCH_AFTER`` into the call (watching costs a task, more than a fast call's own
cost). 2025-11-25 asks servers not to take a disconnect for a cancellation (the client sends
``notifications/cancelled``, ``in_flight.InFlight``), so there the call runs on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gatehouse_contracts import jsonrpc
from gatehouse_contracts.mcp_client import ProgressCallback

T = TypeVar("T")
Answer = tuple[int, bytes]  # the HTTP status and the JSON-RPC message
Work = Callable[[ProgressCallback | None], Awaitable[Answer]]
WATCH_AFTER = 0.05  # seconds: a call answered sooner is not watched for the client leaving
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


def sse_event(message: bytes) -> bytes:
    return b"event: message\ndata: " + message + b"\n\n"


class CallStream(Response):
    """Runs ``work`` (given a progress callback when the client sent ``token``) and answers with
    its outcome; see the module's text."""

    def __init__(self, work: Work, token: Any, *, cancel_on_disconnect: bool) -> None:
        self.work, self.token, self.cancel_on_disconnect = work, token, cancel_on_disconnect
        self.background = None
        self.streaming = False
        self.gone = False
        self.watcher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def progress(params: dict[str, Any]) -> None:
            if not self.streaming:
                self.streaming = True
                await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            # the target saw a token of the gateway's own (unique upstream); the client gets its own
            message = jsonrpc.notification("notifications/progress", {**params, "progressToken": self.token})
            await send({"type": "http.response.body", "body": sse_event(message), "more_body": True})

        work = self.work(None if self.token is None else progress)
        if self.cancel_on_disconnect:
            # the call runs in this task; a watcher, started only if it runs longer than WATCH_AFTER
            # (a task per call would cost a fast call more than the call itself), cancels it if the
            # client leaves first
            task = asyncio.current_task()
            timer = asyncio.get_running_loop().call_later(WATCH_AFTER, self._start_watching, receive, task)
            try:
                answer = await work
            except asyncio.CancelledError:
                if not self.gone or task is None:
                    raise
                task.uncancel()
                return  # the client left: the call was cancelled, nobody to answer
            finally:
                timer.cancel()
                if self.watcher is not None:
                    self.watcher.cancel()
        else:
            answer = await work
        status, body = answer
        if self.streaming:
            await send({"type": "http.response.body", "body": sse_event(body), "more_body": False})
        else:
            await send_json(send, status, body)

    def _start_watching(self, receive: Receive, task: asyncio.Task[Any] | None) -> None:
        self.watcher = asyncio.ensure_future(self._watch(receive, task))

    async def _watch(self, receive: Receive, task: asyncio.Task[Any] | None) -> None:
        await disconnected(receive)
        if task is not None:
            self.gone = True
            task.cancel()


async def unless(work: Awaitable[T], gone: asyncio.Future[None]) -> T | None:
    """``work``'s result, or None (``work`` cancelled) if the client leaves first."""
    task = asyncio.ensure_future(work)
    either: list[asyncio.Future[Any]] = [task, gone]
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        return None
    return task.result()


async def disconnected(receive: Receive) -> None:
    """Returns when the client has closed the connection (the request's body is already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_json(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
