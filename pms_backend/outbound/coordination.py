"""Small pieces of state the worker processes share about receivers: counters, flags and
leases that expire by themselves.

They live in Redis, where each operation is atomic, so every process sees one circuit per
receiver and one claim wins. Without Redis (development: one worker process) they live in
this process; so they do while Redis does not answer (and while this process leaves Redis
alone after a failure, pms_backend/monitoring/redis_outage.py), so an outage of Redis
never stops deliveries: each process then decides alone, as it would with a breaker of
its own.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

from pms_backend.monitoring import redis_outage

logger = logging.getLogger(__name__)

PREFIX = "pms:outbound:"
_DELETE_IF = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND_IF = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


class _Local:
    """The same operations on a dict of this process (values expire like Redis keys)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _get(self, key: str) -> tuple[str, float] | None:
        item = self._data.get(key)
        if item and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._get(key)
            return item[0] if item else None

    def ttl(self, key: str) -> float | None:
        with self._lock:
            item = self._get(key)
            return item[1] - time.monotonic() if item else None

    def incr(self, key: str, ttl: float) -> int:
        with self._lock:
            item = self._get(key)
            value = int(item[0]) + 1 if item else 1
            self._data[key] = (str(value), time.monotonic() + ttl)
            return value

    def set(self, key: str, value: str, ttl: float) -> None:
        with self._lock:
            self._data[key] = (value, time.monotonic() + ttl)

    def add(self, key: str, value: str, ttl: float) -> bool:
        with self._lock:
            if self._get(key):
                return False
            self._data[key] = (value, time.monotonic() + ttl)
            return True

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def delete_if(self, key: str, value: str) -> None:
        with self._lock:
            item = self._get(key)
            if item and item[0] == value:
                del self._data[key]

    def extend_if(self, key: str, value: str, ttl: float) -> None:
        with self._lock:
            item = self._get(key)
            if item and item[0] == value:
                self._data[key] = (value, time.monotonic() + ttl)


class _Redis:
    def __init__(self) -> None:
        from django_redis import get_redis_connection

        self.client = get_redis_connection("default")

    def get(self, key: str) -> str | None:
        value = self.client.get(key)
        return value.decode() if value is not None else None

    def ttl(self, key: str) -> float | None:
        left = self.client.pttl(key)
        return left / 1000 if left > 0 else None

    def incr(self, key: str, ttl: float) -> int:
        pipe = self.client.pipeline()
        pipe.incr(key)
        pipe.pexpire(key, int(ttl * 1000))
        return int(pipe.execute()[0])

    def set(self, key: str, value: str, ttl: float) -> None:
        self.client.set(key, value, px=int(ttl * 1000))

    def add(self, key: str, value: str, ttl: float) -> bool:
        return bool(self.client.set(key, value, px=int(ttl * 1000), nx=True))

    def delete(self, *keys: str) -> None:
        self.client.delete(*keys)

    def delete_if(self, key: str, value: str) -> None:
        self.client.eval(_DELETE_IF, 1, key, value)

    def extend_if(self, key: str, value: str, ttl: float) -> None:
        self.client.eval(_EXTEND_IF, 1, key, value, int(ttl * 1000))


class SharedState:
    """``get``, ``ttl`` (seconds left), ``incr``, ``set``, ``add`` (only if absent),
    ``delete``, and ``delete_if`` and ``extend_if`` (only if it still holds the value), on
    keys under ``pms:outbound:``."""

    def __init__(self) -> None:
        self.local = _Local()
        self._redis: _Redis | None = None

    def _call(self, operation: str, key: str, *args, alone=None):
        """Run ``operation`` in Redis; without it, in this process, or (``alone`` not None)
        not at all, returning ``alone``."""
        from redis.exceptions import RedisError

        key = PREFIX + key
        if settings.REDIS_URL and not redis_outage.paused():
            try:
                if self._redis is None:
                    self._redis = _Redis()
                return getattr(self._redis, operation)(key, *args)
            except RedisError as exc:
                if redis_outage.unreachable(exc):
                    redis_outage.report("webhook circuits", exc)
                else:
                    logger.exception("Redis refused %s; kept in this process", operation)
        if alone is not None:
            return alone
        return getattr(self.local, operation)(key, *args)

    def get(self, key: str) -> str | None:
        return self._call("get", key)

    def ttl(self, key: str) -> float | None:
        return self._call("ttl", key)

    def incr(self, key: str, ttl: float) -> int:
        return self._call("incr", key, ttl)

    def set(self, key: str, value: str, ttl: float) -> None:
        self._call("set", key, value, ttl)

    def add(self, key: str, value: str, ttl: float) -> bool:
        return self._call("add", key, value, ttl)

    def add_among_processes(self, key: str, value: str, ttl: float) -> bool:
        """``add`` in Redis only: without it (or while it does not answer) True, since a
        flag of this process alone would be invisible to the others that clear it."""
        return self._call("add", key, value, ttl, alone=True)

    def delete(self, *keys: str) -> None:
        for key in keys:
            self._call("delete", key)

    def delete_if(self, key: str, value: str) -> None:
        self._call("delete_if", key, value)

    def extend_if(self, key: str, value: str, ttl: float) -> None:
        self._call("extend_if", key, value, ttl)


shared = SharedState()
