"""The one way out: every outgoing HTTP call (webhooks and later integrations).

Timeouts always; the connection pinned to the address the SSRF check approved;
certificates verified; redirects never followed; connect failures retried with backoff
(nothing was sent, so it is safe); and a circuit breaker per origin, shared by the worker
processes (pms_backend/outbound/circuit.py), so a dead receiver costs one fast refusal
instead of a 15 s timeout per request.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from pms_backend.outbound import circuit
from pms_backend.outbound.addresses import resolve
from pms_backend.outbound.circuit import CircuitOpen

__all__ = ["CircuitOpen", "Reply", "circuit_state", "post"]

logger = logging.getLogger(__name__)

CONNECT_RETRIES = (0.2, 0.5)
_client: httpx.Client | None = None


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


# --- requests ------------------------------------------------------------------------


def circuit_state(url: str) -> dict:
    """Return the state of the circuit of ``url``'s origin (see ``circuit.state``)."""
    return circuit.state(url)


def post(url: str, *, content: str, headers: dict[str, str], timeout: float) -> Reply:
    """POST ``content`` to ``url``; raise ``CircuitOpen``, ``DisallowedDestination`` or an
    ``httpx.HTTPError`` (timeouts, refused connections, TLS failures)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = resolve(url)
    passage = circuit.admit(url, timeout=timeout)
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
                circuit.record(passage, ok=False)
                raise
            logger.info("connect to %s failed (try %d); retrying", host, attempt + 1)
            time.sleep(pause)
        except httpx.HTTPError:
            circuit.record(passage, ok=False)
            raise
    latency_ms = int((time.perf_counter() - started) * 1000)
    circuit.record(passage, ok=response.status_code < 500)
    return Reply(response.status_code, response.headers, response.text[:2000], latency_ms)
