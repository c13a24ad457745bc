# ruff: noqa: S603  (starts the benchmark upstream)
"""Why the gateway's upstream MCP calls use aiohttp: CPU per request of httpx and aiohttp clients
making the same tools/call POST to the fast upstream (bench/upstream.py), at concurrency 1 and 32.

One process, uvloop, keep-alive connections, each client with its defaults apart from pool size.
Prints one line per client and concurrency: requests/s and CPU microseconds per request of this
process (the upstream runs in its own process).

Run: .venv/bin/python bench/http_clients.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import harness  # noqa: E402

BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "Mcp-Session-Id": "bench",
    "MCP-Protocol-Version": "2025-11-25",
}
Post = Callable[[], Awaitable[None]]


async def with_httpx(url: str) -> tuple[Post, Callable[[], Awaitable[None]]]:
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=512, max_keepalive_connections=128))

    async def post() -> None:
        (await client.post(url, content=BODY, headers=HEADERS)).read()

    return post, client.aclose


async def with_aiohttp(url: str) -> tuple[Post, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512), cookie_jar=aiohttp.DummyCookieJar()
    )

    async def post() -> None:
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            await response.read()

    return post, session.close


async def measure(post: Post, concurrency: int, seconds: float) -> tuple[float, float]:
    done = 0
    stop = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await post()
            done += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done / (time.perf_counter() - wall), (time.process_time() - cpu) / max(done, 1) * 1e6


async def main(url: str, seconds: float) -> None:
    for name, make in (("httpx", with_httpx), ("aiohttp", with_aiohttp)):
        for concurrency in (1, 32):
            post, close = await make(url)
            await measure(post, concurrency, 0.5)  # connections up, code warm
            rps, us = await measure(post, concurrency, seconds)
            await close()
            print(f"{name:<8} c{concurrency:<3} {rps:8.0f} req/s  {us:7.0f} us CPU per request")


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.delete(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    port = harness.free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "upstream.py"), "--port", str(port)]
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/mcp")
        uvloop.run(main(f"http://127.0.0.1:{port}/mcp", args.seconds))
    finally:
        upstream.terminate()
        upstream.wait()
