"""Where Gatehouse may connect: http(s) only, https for what carries tokens (loopback aside), and
never to a denied network (by default link-local and the cloud metadata services).

Checked twice. At admin time on the URL and on what its host name resolves to, for a clear 400.
And on every connection, by the resolver of every outbound HTTP client (aiohttp's for MCP targets,
httpx's for providers and issuers): the client is handed the resolved addresses minus the denied
ones and connects to one of those, so a name re-pointed after the admin check (DNS rebinding)
still cannot reach a denied address, pooled reconnects included. A name left with no address is
refused (``EndpointDenied``); one that does not resolve fails like any unreachable host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from .config import csv
from .errors import BadRequest

DEFAULT_DENIED_NETWORKS = "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,0.0.0.0/32,::/128"
DENIED_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EndpointDenied(BadRequest, OSError):
    """The endpoint is not allowed; the message says why. An ``OSError`` so that an HTTP client
    treats a refusal at connect time like a failed name lookup, keeping this as its cause; a
    ``BadRequest`` so that a URL an admin sent is refused with 400 as it is, untranslated."""


def denial(exc: BaseException) -> EndpointDenied | None:
    """The ``EndpointDenied`` behind an HTTP client's error, if that is why it failed."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None or isinstance(seen, EndpointDenied):
            return seen
        if isinstance(seen, aiohttp.ClientConnectorError) and isinstance(seen.os_error, EndpointDenied):
            return seen.os_error
        seen = seen.__cause__ or seen.__context__
    return None


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def shown(url: str) -> str:
    """The URL as an error text, a status or an event may show it: without query, fragment and
    user info (an endpoint's query may carry an API key)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))[:300]


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    ip = _ip(host)
    return ip.is_loopback if ip is not None else host.rstrip(".").lower() == "localhost"


class EndpointGuard:
    """The deny-list (``TARGET_DENIED_NETWORKS``), the https rule, and the resolver that enforces
    them; ``nameservers`` (``TARGET_DNS_SERVERS``, ``ip[:port]`` comma-separated) replaces the
    system resolver."""

    def __init__(
        self,
        denied_networks: str = DEFAULT_DENIED_NETWORKS,
        *,
        nameservers: str = "",
        allow_insecure_http: bool = False,
    ) -> None:
        try:
            self.denied: list[Network] = [ipaddress.ip_network(n, strict=False) for n in csv(denied_networks)]
        except ValueError as exc:
            raise ValueError(f"TARGET_DENIED_NETWORKS: {exc}") from None
        self.nameservers = csv(nameservers)
        self.allow_insecure_http = allow_insecure_http
        self._resolver: AbstractResolver | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> EndpointGuard:
        """From a service's ``target_denied_networks``, ``target_dns_servers`` and (where the
        service checks URLs it hands tokens to) ``gatehouse_allow_insecure_http``."""
        return cls(
            settings.target_denied_networks,
            nameservers=settings.target_dns_servers,
            allow_insecure_http=getattr(settings, "gatehouse_allow_insecure_http", False),
        )

    def is_denied(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.denied)

    def check_url(self, url: str) -> str:
        """The URL if its scheme and literal host are allowed, else ``EndpointDenied``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EndpointDenied("the endpoint must be an absolute http(s) URL")
        host = parts.hostname.rstrip(".").lower()
        if host in DENIED_HOSTS or self.is_denied(host):
            raise EndpointDenied(f"the endpoint's host {host!r} is on a denied network")
        return url

    def check_https(self, url: str, what: str) -> str:
        """The URL if it is https, or http to this machine (loopback), or http is allowed
        (``GATEHOUSE_ALLOW_INSECURE_HTTP``); else ``EndpointDenied`` naming ``what``."""
        parts = urlsplit(url)
        if parts.scheme == "https" or (
            parts.scheme == "http" and (self.allow_insecure_http or is_loopback(parts.hostname))
        ):
            return url
        raise EndpointDenied(f"{what} must be an https URL (http only for loopback addresses)")

    async def check_resolved(self, url: str) -> None:
        """Also refuse a host name that does not resolve or resolves to a denied address."""
        self.check_url(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            infos = await self._system().resolve(host, parts.port or 0, socket.AF_UNSPEC)
        except OSError:
            raise EndpointDenied(f"the endpoint's host {host!r} does not resolve") from None
        if any(self.is_denied(info["host"]) for info in infos):
            raise EndpointDenied(f"the endpoint's host {host!r} resolves to a denied network")

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        """The addresses of ``host`` a client may connect to; ``EndpointDenied`` if none is left."""
        name = host.rstrip(".").lower()
        if name in DENIED_HOSTS:
            raise EndpointDenied(f"the host {name!r} is on a denied network")
        if _ip(host) is not None:
            literal = host.strip("[]")
            kind = socket.AF_INET6 if ":" in literal else socket.AF_INET
            infos = [ResolveResult(hostname=host, host=literal, port=port, family=kind, proto=0, flags=0)]
        else:
            infos = await self._system().resolve(host, port, family)
        allowed = [info for info in infos if not self.is_denied(info["host"])]
        if not allowed:
            raise EndpointDenied(f"the host {name!r} resolves only to denied networks")
        return allowed

    def _system(self) -> AbstractResolver:
        """The resolver the guard filters, made inside the running loop on first use."""
        if self._resolver is None:
            self._resolver = (
                aiohttp.AsyncResolver(nameservers=self.nameservers)
                if self.nameservers
                else aiohttp.ThreadedResolver()
            )
        return self._resolver

    def aiohttp_resolver(self) -> AbstractResolver:
        """For ``aiohttp.TCPConnector(resolver=...)``."""
        return _AiohttpResolver(self)

    def httpx_client(self, *, timeout: float) -> httpx.AsyncClient:
        """An httpx client that connects only where the guard allows: no proxy from the
        environment (the guard must see the address connected to), no redirects."""
        return httpx.AsyncClient(
            transport=_GuardedTransport(self), timeout=timeout, follow_redirects=False, trust_env=False
        )

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None


class _AiohttpResolver(AbstractResolver):
    def __init__(self, guard: EndpointGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return await self._guard.resolve(host, port, family)

    async def close(self) -> None:
        pass  # the guard owns the resolver it filters


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting to an address the guard allows (TLS still checks
    the certificate against the URL's host name: httpcore passes it as SNI separately)."""

    def __init__(self, guard: EndpointGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                infos = await self._guard.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        failure: Exception = httpcore.ConnectError(f"no address of {host!r} to connect to")
        for info in infos:
            try:
                return await self._inner.connect_tcp(
                    info["host"], port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an allowed endpoint")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, guard: EndpointGuard) -> None:
        super().__init__(trust_env=False)
        # httpx has no public way to give its pool a network backend; its own pool is replaced
        # by one built the same way (see httpx/_transports/default.py) with the guarded backend
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(guard),
        )
