"""Where outgoing requests may go: SSRF checks on the address actually connected to."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 2000


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
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return
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


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool):
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if allow_private:
        if address.is_multicast or address.is_unspecified:
            raise DisallowedDestination(f"{address} is not a unicast address")
        return
    if not address.is_global or address.is_multicast:
        raise DisallowedDestination(
            f"{address} is a private, loopback, link-local or reserved address"
        )
