"""A Redis outage, noticed once per process: a pause, and a log line a minute.

Redis is a cache and a transport, never the only copy of anything: while it is down, cache
reads fall through to PostgreSQL, rate limits let requests through, and events wait in the
outbox for the sweep. What must not happen is every request paying for the outage again,
in connect attempts and in a traceback per Redis call. So the first failure a process sees
pauses its use of Redis for ``PAUSE_SECONDS`` (callers skip Redis at once, as if it had
refused), after which the next call tries again; and the outage is logged when first seen,
then at most once every ``REPORT_EVERY_SECONDS``, as one line without a traceback.

Imported by the logging configuration (the filter below), so it imports nothing from
Django.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("pms.redis")

PAUSE_SECONDS = 5.0
REPORT_EVERY_SECONDS = 60.0
OUTAGE_MESSAGE = "redis unreachable"


class RedisPaused(RedisConnectionError):
    """Redis is not tried: it failed in this process less than ``PAUSE_SECONDS`` ago."""


_lock = threading.Lock()
_state = {"pid": 0, "paused_until": 0.0, "reported_at": None}


def _mine() -> dict:
    """This process's state (a forked child starts afresh)."""
    if _state["pid"] != os.getpid():
        _state.update(pid=os.getpid(), paused_until=0.0, reported_at=None)
    return _state


def paused() -> bool:
    """Whether callers should leave Redis alone for now."""
    with _lock:
        return time.monotonic() < _mine()["paused_until"]


def report(source: str, error: BaseException | None = None) -> None:
    """Record that Redis failed for ``source`` (cache, broker, rate limits): pause its use,
    and log it unless this process did so less than a minute ago."""
    if isinstance(connectivity_error(error), RedisPaused):
        return  # skipped on purpose, not a new failure
    now = time.monotonic()
    with _lock:
        state = _mine()
        state["paused_until"] = now + PAUSE_SECONDS
        due = state["reported_at"] is None or now - state["reported_at"] >= REPORT_EVERY_SECONDS
        if due:
            state["reported_at"] = now
    if due:
        logger.warning(
            "%s (pid %d; %s: %s): cache reads go to the database, rate limits let requests "
            "through, events wait in the outbox for the sweep; Redis is tried again every "
            "%.0f s; logged once a minute while it lasts",
            OUTAGE_MESSAGE,
            os.getpid(),
            source,
            describe(error),
            PAUSE_SECONDS,
        )


def resume() -> None:
    """Forget this process's pause: its next call tries Redis at once (tests that made
    Redis fail end with it, so the next test does not run within the pause)."""
    with _lock:
        _mine().update(paused_until=0.0, reported_at=None)


def describe(error: BaseException | None) -> str:
    if error is None:
        return "unavailable"
    cause = connectivity_error(error) or error
    return f"{type(cause).__name__}: {cause}"


def connectivity_error(error: BaseException | None) -> BaseException | None:
    """The Redis connection or timeout error in ``error``'s chain of causes, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, RedisConnectionError | RedisTimeoutError):
            return error
        error = error.__cause__ or error.__context__
    return None


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says Redis (as cache or as broker) could not be reached."""
    from kombu.exceptions import OperationalError

    return connectivity_error(error) is not None or isinstance(error, OperationalError)


class IgnoredRedisErrorFilter(logging.Filter):
    """For django-redis's logger: a connection error the cache ignored (it answers a miss)
    becomes this process's outage report instead of a traceback per cache call. Other
    errors (a full Redis refusing writes) keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        cause = connectivity_error(error)
        if cause is None:
            return True
        report("cache", cause)
        return False
