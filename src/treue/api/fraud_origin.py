"""Where a request came from, for the velocity caps (issue 10): the device id the body names and the client IP.

The client IP is the TCP peer's address. `X-Forwarded-For` is read only when the peer is a trusted proxy, named
in TREUE_TRUSTED_PROXIES (comma-separated addresses or networks, e.g. `10.0.0.0/8,127.0.0.1`): then the address
is the right-most one in the header that is not itself a trusted proxy (the left-most entries are whatever the
client claimed and are never believed). Without the setting the header is ignored, so nobody can choose the
address a cap counts by sending the header. A shop server that forwards its customer's address is configured as
a trusted proxy the same way.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache

from fastapi import Request

from treue.domain.fraud import Origin

TRUSTED_PROXIES_ENV = "TREUE_TRUSTED_PROXIES"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def trusted_networks(setting: str) -> tuple[Network, ...]:
    found = []
    for part in setting.split(","):
        if part.strip():
            found.append(ipaddress.ip_network(part.strip(), strict=False))
    return tuple(found)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(peer: str | None, forwarded_for: str | None, setting: str | None) -> str | None:
    """The client's address: the peer, or (behind trusted proxies only) the right-most untrusted hop."""
    networks = trusted_networks(setting or "")
    if peer is None or not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed hop: believe nothing the header says
    return peer


def origin_of(request: Request, device_id: str | None) -> Origin:
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), os.environ.get(TRUSTED_PROXIES_ENV))
    return Origin(device_id=device_id, ip=ip)
