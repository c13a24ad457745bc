"""Where targets may live: http(s) only, and never on a denied network (by default link-local and
the cloud metadata services), checked on the URL, on what its host name resolves to when an admin
sets it, and again whenever a session to it opens (a name may be re-pointed later)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

DEFAULT_DENIED_NETWORKS = "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,0.0.0.0/32,::/128"
DENIED_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EndpointDenied(ValueError):
    """The endpoint is not allowed; the message says why."""


class EndpointGuard:
    def __init__(self, denied_networks: str = DEFAULT_DENIED_NETWORKS) -> None:
        try:
            self.denied: list[Network] = [
                ipaddress.ip_network(n.strip(), strict=False) for n in denied_networks.split(",") if n.strip()
            ]
        except ValueError as exc:
            raise ValueError(f"TARGET_DENIED_NETWORKS: {exc}") from None

    def _denied(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.denied)

    def check_url(self, url: str) -> str:
        """The URL if its scheme and literal host are allowed, else ``EndpointDenied``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EndpointDenied("the endpoint must be an absolute http(s) URL")
        host = parts.hostname.rstrip(".").lower()
        if host in DENIED_HOSTS or self._denied(host):
            raise EndpointDenied(f"the endpoint's host {host!r} is on a denied network")
        return url

    async def check_resolved(self, url: str) -> None:
        """Also refuse a host name that resolves to a denied address (a name that does not resolve
        passes: connecting to it will fail anyway)."""
        self.check_url(url)
        parts = urlsplit(url)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname,
                parts.port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM,
            )
        except OSError:
            return
        for *_, sockaddr in infos:
            if self._denied(str(sockaddr[0])):
                raise EndpointDenied(f"the endpoint's host {parts.hostname!r} resolves to a denied network")
