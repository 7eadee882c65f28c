"""Fixed-window rate limits counted in Redis (or the local cache without Redis).

Limits are ``count/period`` strings from settings. Counting never blocks the shop: if
the counter store is unreachable, requests are let through.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

_PERIODS = {
    **dict.fromkeys(("s", "sec", "second"), 1),
    **dict.fromkeys(("m", "min", "minute"), 60),
    **dict.fromkeys(("h", "hour"), 3600),
    **dict.fromkeys(("d", "day"), 86400),
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE.match(text.lower())
        if not match or match.group(3) not in _PERIODS:
            raise ValueError(f"rate {text!r} is not like '600/minute' or '10/5m'")
        multiplier = int(match.group(2) or 1)
        return cls(int(match.group(1)), multiplier * _PERIODS[match.group(3)])


@dataclass(frozen=True)
class Verdict:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends

    @property
    def allowed(self) -> bool:
        return self.remaining >= 0


def rate(name: str) -> Rate:
    return Rate.parse(settings.PMS_RATE_LIMITS[name])


def _redis_client():
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        return None
    return client.get_client(write=True)


def hit(buckets: list[tuple[str, str, Rate]], *, cost: int = 1) -> list[Verdict]:
    """Count one request against each ``(bucket, identity, rate)``; return the verdicts."""
    return hit_and_peek(buckets, [], cost=cost)[0]


def hit_and_peek(
    buckets: list[tuple[str, str, Rate]],
    peeks: list[tuple[str, str, Rate]],
    *,
    cost: int = 1,
) -> tuple[list[Verdict], list[int]]:
    """``hit(buckets)`` and ``peek`` each of ``peeks``, in one round trip to Redis."""
    now = time.time()
    keys, resets = [], []
    for bucket, ident, r in buckets:
        window = int(now // r.seconds)
        keys.append(f"rl:{bucket}:{ident}:{window}")
        resets.append(int((window + 1) * r.seconds - now) + 1)
    peek_keys = [f"rl:{bucket}:{ident}:{int(now // r.seconds)}" for bucket, ident, r in peeks]
    try:
        counts, peeked = _count(keys, [r.seconds for _, _, r in buckets], cost, peek_keys)
    except Exception:  # the limiter must never take the API down with it
        logger.warning("rate-limit store unreachable; letting the request through", exc_info=True)
        return [
            Verdict(r.count, r.count, reset)
            for (_, _, r), reset in zip(buckets, resets, strict=True)
        ], [0] * len(peeks)
    return [
        Verdict(r.count, r.count - count, reset)
        for (_, _, r), count, reset in zip(buckets, counts, resets, strict=True)
    ], peeked


def peek(bucket: str, ident: str, r: Rate) -> int:
    """Return the current count of a bucket without adding to it."""
    window = int(time.time() // r.seconds)
    try:
        return int(cache.get(f"rl:{bucket}:{ident}:{window}") or 0)
    except Exception:
        return 0


def _count(
    keys: list[str], ttls: list[int], cost: int, peek_keys: list[str]
) -> tuple[list[int], list[int]]:
    redis = _redis_client()
    if redis is not None:
        pipe = redis.pipeline(transaction=False)
        for key, ttl in zip(keys, ttls, strict=True):
            pipe.incrby(cache.make_key(key), cost)
            pipe.expire(cache.make_key(key), ttl + 1, nx=True)
        for key in peek_keys:
            # Written by cache.add/incr: an integer, stored as its decimal digits.
            pipe.get(cache.make_key(key))
        results = pipe.execute()
        peeked = results[len(keys) * 2 :]
        return [int(results[i * 2]) for i in range(len(keys))], [int(v or 0) for v in peeked]
    counts = []
    for key, ttl in zip(keys, ttls, strict=True):
        cache.add(key, 0, ttl + 1)
        counts.append(cache.incr(key, cost))
    return counts, [int(cache.get(key) or 0) for key in peek_keys]


def most_constraining(verdicts: list[Verdict]) -> Verdict:
    return min(verdicts, key=lambda v: (v.remaining, -v.reset))
