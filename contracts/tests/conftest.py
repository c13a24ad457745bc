"""Helpers of the contracts' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
def serve_post() -> Callable[[Handler], AbstractAsyncContextManager[str]]:
    """``async with serve_post(handler) as url``: a real HTTP server on 127.0.0.1 whose
    ``POST /mcp`` is ``handler``."""
    return _serve_post


@asynccontextmanager
async def _serve_post(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/mcp", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        await runner.cleanup()
