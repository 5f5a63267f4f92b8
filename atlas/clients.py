"""Which address a request comes from, for throttling (docs/operations.md, "Throttling").

X-Forwarded-For is written by whoever sends the request, so it only counts as far as it was
appended by proxies we trust. TRUSTED_PROXIES (settings) is either a number N of reverse
proxies in front of the app, each appending the address it saw (the client is then the N-th
address from the right of X-Forwarded-For + REMOTE_ADDR), or a list of the proxies' networks
(the client is the right-most address not in them). 0, the default: REMOTE_ADDR only.
"""

from __future__ import annotations

import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _networks(spec: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n) for n in spec)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = settings.TRUSTED_PROXIES
    if not trusted:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    chain = [*forwarded, remote]
    if isinstance(trusted, int):
        # Fewer hops than proxies: the request did not come through all of them; its header
        # may be anybody's, so only the peer counts.
        return chain[-(trusted + 1)] if len(chain) > trusted else remote
    networks = _networks(tuple(trusted))
    for hop in reversed(chain):
        address = _address(hop)
        if address is None:
            return remote  # not written by a proxy of ours
        if not any(address in network for network in networks):
            return str(address)
    return chain[0]  # every hop is a proxy of ours (a health probe, say)
