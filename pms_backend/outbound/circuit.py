"""The circuit breaker of outgoing calls, one per origin (scheme, host and port), shared by
every worker process.

Closed: calls go through and failures are counted. After ``PMS_CIRCUIT_FAILURES`` failures
in a row it opens for ``PMS_CIRCUIT_OPEN_SECONDS``: calls are refused at once, so a dead
receiver costs nothing. Then it is half-open: exactly one call, across all processes, may
probe (an atomic claim that expires after the call's timeout, in case its process dies);
the others are refused until the probe answers. A success closes it; a failure opens it
again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from pms_backend.outbound.coordination import shared
from pms_backend.plurals import counted

logger = logging.getLogger(__name__)

FAILURES_KEPT_SECONDS = 24 * 3600
# A probe's claim outlives its call (the timeout, connect retries included) by this much.
PROBE_MARGIN_SECONDS = 5.0
DEFAULT_PORTS = {"http": 80, "https": 443}


class CircuitOpen(Exception):
    """The origin failed too often lately; calls are refused until ``retry_in`` seconds
    have passed (nothing was sent)."""

    def __init__(self, origin: str, retry_in: float, why: str) -> None:
        super().__init__(f"circuit open for {origin} ({why})")
        self.origin = origin
        self.retry_in = max(retry_in, 1.0)


@dataclass(frozen=True)
class Passage:
    """Leave to make one call: as a probe when ``probe`` holds the claim's token."""

    origin: str
    failures: int
    probe: str | None = None


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, the port spelled out even when it is the default."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def _keys(key: str) -> tuple[str, str, str]:
    return f"circuit:{key}:failures", f"circuit:{key}:open", f"circuit:{key}:probe"


def admit(url: str, *, timeout: float) -> Passage:
    """Return leave to call ``url``, or raise :class:`CircuitOpen`."""
    key = origin(url)
    failures_key, open_key, probe_key = _keys(key)
    failures = int(shared.get(failures_key) or 0)
    if failures < settings.PMS_CIRCUIT_FAILURES:
        return Passage(key, failures)
    left = shared.ttl(open_key)
    if left:
        raise CircuitOpen(key, left, f"{counted(failures, 'failure')} in a row")
    token = uuid.uuid4().hex
    if shared.add(probe_key, token, timeout + PROBE_MARGIN_SECONDS):
        logger.info("circuit for %s half-open: probing", key)
        return Passage(key, failures, token)
    raise CircuitOpen(key, shared.ttl(probe_key) or 1.0, "another call is probing it")


def record(passage: Passage, *, ok: bool) -> None:
    """Count the call's outcome: a success closes the circuit, a failure counts (and opens
    it at the threshold, or again after a failed probe)."""
    failures_key, open_key, probe_key = _keys(passage.origin)
    if ok:
        if passage.failures or passage.probe:
            shared.delete(failures_key, open_key, probe_key)
            if passage.probe:
                logger.warning("circuit for %s closed: the probe succeeded", passage.origin)
        return
    failures = shared.incr(failures_key, FAILURES_KEPT_SECONDS)
    if failures >= settings.PMS_CIRCUIT_FAILURES:
        shared.set(open_key, "1", settings.PMS_CIRCUIT_OPEN_SECONDS)
        if passage.probe or failures == settings.PMS_CIRCUIT_FAILURES:
            logger.warning(
                "circuit for %s opened after %s", passage.origin, counted(failures, "failure")
            )
    if passage.probe:
        shared.delete_if(probe_key, passage.probe)


def state(url: str) -> dict:
    """Return ``{"state": closed|open|half-open, "failures": n, "open_for": seconds|None}``
    of ``url``'s origin."""
    failures_key, open_key, _ = _keys(origin(url))
    failures = int(shared.get(failures_key) or 0)
    if failures < settings.PMS_CIRCUIT_FAILURES:
        return {"state": "closed", "failures": failures, "open_for": None}
    left = shared.ttl(open_key)
    name = "open" if left else "half-open"
    return {"state": name, "failures": failures, "open_for": left}
