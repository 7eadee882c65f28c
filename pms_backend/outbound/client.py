"""The one way out: every outgoing HTTP call (webhooks and later integrations).

Timeouts always; the connection pinned to the address the SSRF check approved;
certificates verified; redirects never followed; connect failures retried with backoff
(nothing was sent, so it is safe); and a per-host circuit breaker, so a dead receiver
costs one fast refusal instead of a 15 s timeout per request.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.core.cache import cache

from pms_backend.outbound.addresses import resolve

logger = logging.getLogger(__name__)

CONNECT_RETRIES = (0.2, 0.5)
_client: httpx.Client | None = None


class CircuitOpen(Exception):
    """The host failed too often lately; calls are refused until it cools down."""


@dataclass(frozen=True)
class Reply:
    status_code: int
    headers: httpx.Headers
    text: str
    latency_ms: int


def _shared_client() -> httpx.Client:
    global _client
    if _client is None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        _client = httpx.Client(
            follow_redirects=False,
            # httpcore writes the headers and the body of a request separately: with
            # Nagle's algorithm on, the body waited for the receiver's delayed ACK of the
            # headers, 40 ms or more per webhook on a kept-alive connection.
            transport=httpx.HTTPTransport(
                verify=True,
                limits=limits,
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            ),
        )
    return _client


# --- circuit breaker -----------------------------------------------------------------


def _breaker_key(host: str) -> str:
    return f"circuit:{host}"


def circuit_state(host: str) -> dict:
    """Return ``{"state": closed|open|half-open, "failures": n, "open_until": ts|None}``."""
    data = cache.get(_breaker_key(host)) or {"failures": 0, "open_until": None}
    open_until = data.get("open_until")
    if open_until and open_until > time.time():
        state = "open"
    elif open_until:
        state = "half-open"
    else:
        state = "closed"
    return {"state": state, **data}


def _record(host: str, ok: bool) -> None:
    if ok:
        cache.delete(_breaker_key(host))
        return
    data = cache.get(_breaker_key(host)) or {"failures": 0, "open_until": None}
    data["failures"] += 1
    if data["failures"] >= settings.PMS_CIRCUIT_FAILURES:
        data["open_until"] = time.time() + settings.PMS_CIRCUIT_OPEN_SECONDS
        logger.warning("circuit for %s opened after %d failures", host, data["failures"])
    cache.set(_breaker_key(host), data, 24 * 3600)


# --- requests ------------------------------------------------------------------------


def post(url: str, *, content: str, headers: dict[str, str], timeout: float) -> Reply:
    """POST ``content`` to ``url``; raise ``CircuitOpen``, ``DisallowedDestination`` or an
    ``httpx.HTTPError`` (timeouts, refused connections, TLS failures)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if circuit_state(host)["state"] == "open":
        raise CircuitOpen(f"circuit open for {host}")
    address = resolve(url)
    literal = (
        f"[{address}]"
        if isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address)
        else address
    )
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    request_headers = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    started = time.perf_counter()
    for attempt, pause in enumerate((*CONNECT_RETRIES, None)):
        try:
            response = _shared_client().post(
                pinned,
                content=content.encode(),
                headers=request_headers,
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                extensions=extensions,
            )
            break
        except httpx.ConnectError:
            if pause is None:
                _record(host, ok=False)
                raise
            logger.info("connect to %s failed (try %d); retrying", host, attempt + 1)
            time.sleep(pause)
        except httpx.HTTPError:
            _record(host, ok=False)
            raise
    latency_ms = int((time.perf_counter() - started) * 1000)
    _record(host, ok=response.status_code < 500)
    return Reply(response.status_code, response.headers, response.text[:2000], latency_ms)
