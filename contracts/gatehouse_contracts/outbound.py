"""Fetching from providers and issuers (discovery documents, JWKS, token endpoints) within limits:
at most so many bytes, within so many seconds in all, through a guarded client (``netguard``)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import GatehouseError
from .netguard import denial


class ResponseTooLarge(GatehouseError):
    """An answer was longer than the caller allows."""


class FetchFailed(GatehouseError):
    """A document could not be fetched; the message names the URL and why."""


async def get_json(http: httpx.AsyncClient, url: str, limits: Limits) -> Any:
    """The JSON document at ``url`` (discovery, JWKS), within ``limits``; else ``FetchFailed``."""
    try:
        status, body = await fetch(http, "GET", url, limits)
    except ResponseTooLarge as exc:
        raise FetchFailed(f"{url}: {exc}") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{url} is unreachable ({denial(exc) or type(exc).__name__})") from None
    if status != 200:
        raise FetchFailed(f"{url} answered HTTP {status}")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise FetchFailed(f"{url} did not answer JSON") from None


@dataclass(frozen=True)
class Limits:
    """How long and how much one outbound fetch (discovery, JWKS, token endpoint) may take."""

    timeout: float
    max_bytes: int


async def fetch(
    http: httpx.AsyncClient, method: str, url: str, limits: Limits, **options: Any
) -> tuple[int, bytes]:
    """One request's status and body: at most ``limits.max_bytes`` (else ``ResponseTooLarge``,
    without reading on), within ``limits.timeout`` seconds in all (a server dripping its answer
    cannot hold the caller: ``httpx.ReadTimeout``); transport faults are httpx's errors."""
    try:
        async with asyncio.timeout(limits.timeout):
            async with http.stream(method, url, **options) as response:
                return response.status_code, await _read_capped(response, limits.max_bytes)
    except TimeoutError:
        raise httpx.ReadTimeout(f"no complete answer within {limits.timeout:g}s") from None


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed response, refused (``ResponseTooLarge``) past ``limit`` bytes without
    reading on."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"the answer is over {limit} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"the answer is over {limit} bytes")
    return bytes(body)
