"""Where outgoing requests may go: SSRF checks on the address actually connected to."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 2000

# IPv6 ranges whose last 32 bits are an IPv4 address a packet may end up at: IPv4-translated
# (SIIT, RFC 6145), NAT64's well-known prefix (RFC 6052) and the deprecated
# IPv4-compatible addresses (``::7f00:1`` is 127.0.0.1). IPv4-mapped (``::ffff:0:0/96``),
# 6to4 (``2002::/16``) and Teredo (``2001::/32``) are read by ``ipaddress`` itself.
_LAST_32_BITS_IPV4 = tuple(
    ipaddress.ip_network(n) for n in ("::ffff:0:0:0/96", "64:ff9b::/96", "::/96")
)
# Not globally reachable, though the ipaddress module of Python 3.11 calls them global:
# site-local (deprecated), NAT64 for local use (RFC 8215), documentation (RFC 9637), SRv6.
_NOT_GLOBAL_IPV6 = tuple(
    ipaddress.ip_network(n) for n in ("fec0::/10", "64:ff9b:1::/48", "3fff::/20", "5f00::/16")
)


class DisallowedDestination(Exception):
    """The URL or the address it resolves to must not be called."""


def check_url(url: str, *, allow_private: bool | None = None) -> None:
    """Refuse what is wrong with a URL on its face (scheme, credentials, length, host)."""
    allow_private = _allow_private(allow_private)
    if len(url) > MAX_URL_LENGTH:
        raise DisallowedDestination(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as exc:
        raise DisallowedDestination(f"the URL is malformed ({exc})") from exc
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise DisallowedDestination("the URL must use https")
    if parts.username or parts.password:
        raise DisallowedDestination("the URL must not carry credentials")
    if not parts.hostname:
        raise DisallowedDestination("the URL has no host")
    literal = _ip_literal(parts.hostname)
    if literal is not None:
        _check_address(literal, allow_private)


def resolve(url: str, *, allow_private: bool | None = None) -> str:
    """Resolve the URL's host now and return the one address to connect to.

    Called at send time, not only when the URL is saved: a name that later resolves to
    a private address (DNS rebinding) is refused then.
    """
    allow_private = _allow_private(allow_private)
    check_url(url, allow_private=allow_private)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DisallowedDestination(f"{parts.hostname} does not resolve ({exc})") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:  # every answer must be allowed, not just the first
        _check_address(address, allow_private)
    return str(addresses[0])


def _allow_private(value: bool | None) -> bool:
    return settings.PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS if value is None else value


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Return the address ``host`` spells, if it is one, in any form a resolver takes:
    ``127.1``, ``0x7f.1``, ``2130706433`` and ``0177.0.0.1`` are all 127.0.0.1."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Return the IPv4 addresses an IPv6 address stands for (mapped, translated,
    compatible, NAT64, 6to4, both of Teredo's), each of which a packet may reach."""
    found = []
    if address.ipv4_mapped:
        found.append(address.ipv4_mapped)
    elif any(address in network for network in _LAST_32_BITS_IPV4):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour:
        found.append(address.sixtofour)
    if address.teredo:
        found.extend(address.teredo)
    return found


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool):
    """Refuse ``address`` or any IPv4 address inside it that is not a public unicast one."""
    checked: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        # A mapped address is its IPv4 address (a dual-stack socket connects to it).
        checked = [*embedded] if address.ipv4_mapped else [address, *embedded]
    for candidate in checked:
        inside = f" (it stands for {candidate})" if candidate != address else ""
        if allow_private:
            if candidate.is_multicast or candidate.is_unspecified:
                raise DisallowedDestination(f"{address} is not a unicast address{inside}")
            continue
        if not _is_public(candidate):
            raise DisallowedDestination(
                f"{address} is a private, loopback, link-local or reserved address{inside}"
            )


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if not address.is_global or address.is_multicast:
        return False
    return not (
        isinstance(address, ipaddress.IPv6Address)
        and any(address in network for network in _NOT_GLOBAL_IPV6)
    )
