"""Where a webhook may go (issue 25, D-124): a tenant's operator sets the URL, so it must not reach inside the
platform (Lambda's runtime API on 127.0.0.1:9001, the instance metadata at 169.254.169.254, a VPC's private
addresses). The URL must be https to a DNS name, with no user info; the name is resolved when a message is
sent and every address it resolves to must be public; the sender then connects to the address it checked
(no second lookup can move it) and follows no redirect. Plain http to loopback is allowed only where the
local stack says so (`LOYALTY_LOCAL_WEBHOOKS`, set by infra/local and never by the template)."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL_NAMES = ("localhost", "127.0.0.1")
# Ranges `is_global` does not already refuse, or refuses only on some Python versions
_REFUSED = [
    ipaddress.ip_network(n) for n in ("100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10", "fd00:ec2::/32")
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class TargetRefused(ValueError):
    """The URL or the addresses it leads to are not a webhook's to reach; `reason` is the send record's."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with its query


def checked_url(url: str, *, local: bool) -> Target:
    """The URL's form: https to a DNS name (no IP literal in any spelling: dotted, integer, hex, IPv6), no
    user info; or, where `local`, http to this machine."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("webhookUrlRefused", "the URL cannot be read") from None
    host = (parts.hostname or "").rstrip(".")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("webhookUrlRefused", "a webhook URL carries no user name or password")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if local and parts.scheme == "http" and host in _LOCAL_NAMES:
        return Target("http", host, port or 80, path)
    if parts.scheme != "https":
        raise TargetRefused("webhookUrlRefused", "a webhook URL is https")
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise TargetRefused("webhookUrlRefused", "a webhook URL names its host by a DNS name, not an address")
    if host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
        raise TargetRefused("webhookAddressRefused", "a webhook may not reach this machine or its network")
    return Target("https", host, port or 443, path)


def public(address: str) -> bool:
    """Whether an address is on the public internet: not loopback, link-local (the metadata service),
    private, shared (CGNAT), unique-local, multicast, reserved or unspecified; an IPv4 address inside an
    IPv6 one (mapped, 6to4, Teredo) is judged as itself."""
    ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return public(str(inner))
    if ip.is_multicast or not ip.is_global:
        return False
    return not any(ip in network for network in _REFUSED if network.version == ip.version)


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def address_for(target: Target, resolve: Resolver = system_resolver) -> str:
    """The address to connect to: the first the host resolves to, once every one of them is public (a name
    with one private address among public ones is refused: a resolver may hand out either). A name that
    does not resolve raises OSError (the sender tries later)."""
    if target.scheme == "http":  # the local stack's loopback receiver
        return "127.0.0.1"
    addresses = resolve(target.host, target.port)
    if not addresses or not all(public(a) for a in addresses):
        raise TargetRefused("webhookAddressRefused", "a webhook may reach public addresses only")
    return addresses[0]
