"""The cache's Redis client (django-redis ``CLIENT_CLASS``): it leaves Redis alone while
this process's outage pause lasts (pms_backend/monitoring/redis_outage.py)."""

from __future__ import annotations

from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted

from pms_backend.monitoring import redis_outage


def _interrupted() -> ConnectionInterrupted:
    # django-redis answers a miss for it (IGNORE_EXCEPTIONS) and logs it with its cause,
    # which the outage filter recognises as a skip, not a new failure.
    error = ConnectionInterrupted(connection=None)
    error.__cause__ = redis_outage.RedisPaused("Redis paused after a failure in this process")
    return error


class PausingClient(DefaultClient):
    def get_client(self, write=True, tried=None):
        if redis_outage.paused():
            raise _interrupted()
        return super().get_client(write=write, tried=tried)

    def get_client_with_index(self, write=True, tried=None):
        if redis_outage.paused():
            raise _interrupted()
        return super().get_client_with_index(write=write, tried=tried)
