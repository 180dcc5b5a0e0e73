"""The client's IP address, honouring X-Forwarded-For only behind trusted proxies (field case C23).

Rule: the socket peer is the client, unless the peer is one of settings.trusted_proxies (comma-separated
IPs or CIDRs). Then X-Forwarded-For is walked from the right (the hop each trusted proxy appended) and
the right-most hop that is not itself a trusted proxy is the client. Anything a client writes at the left
of the header is never reached while a proxy appended the real address after it, so spoofing cannot
consume another address's quota.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from starlette.requests import Request

from backend.core.config import get_settings

log = logging.getLogger("openmesh.clientip")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=32)
def parse_networks(spec: str) -> tuple[IPNetwork, ...]:
    """`"10.0.0.0/8, 127.0.0.1"` → networks; invalid entries are logged and skipped."""
    nets: list[IPNetwork] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            log.warning("ignoring invalid TRUSTED_PROXIES entry %r", part)
    return tuple(nets)


def parse_ip(raw: str) -> IPAddress | None:
    """An address from a header hop: `1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`; else None."""
    raw = raw.strip().strip('"')
    if not raw:
        return None
    if raw.startswith("["):
        raw = raw[1:].split("]", 1)[0]
    elif raw.count(":") == 1:  # IPv4 with a port
        raw = raw.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_trusted(ip: IPAddress, nets: tuple[IPNetwork, ...]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def resolve_client_ip(peer: str, forwarded_for: list[str], trusted: str) -> str:
    """Pure form of `client_ip`: `forwarded_for` is every X-Forwarded-For header value in order."""
    nets = parse_networks(trusted)
    peer_ip = parse_ip(peer)
    if not nets or peer_ip is None or not _is_trusted(peer_ip, nets):
        return peer
    hops = [h for value in forwarded_for for h in value.split(",")]
    candidate = str(peer_ip)
    for raw in reversed(hops):
        ip = parse_ip(raw)
        if ip is None:
            # A malformed hop: nothing to its left can be trusted; keep the last good hop.
            return candidate
        candidate = str(ip)
        if not _is_trusted(ip, nets):
            return candidate
    # Every hop is a trusted proxy: the left-most one is the best we know.
    return candidate


def client_ip(request: Request) -> str:
    """The socket peer, or behind a trusted proxy the right-most untrusted X-Forwarded-For hop."""
    peer = request.client.host if request.client else ""
    trusted = get_settings().trusted_proxies
    if not trusted:
        return peer
    return resolve_client_ip(peer, request.headers.getlist("x-forwarded-for"), trusted)
