"""Fixed-window rate limits counted in Redis (or the local cache without Redis).

Limits are ``count/period`` strings from settings. Counting never blocks the shop: if
the counter store is unreachable, requests are let through.

A request's windows are counted in one round trip to Redis (one Lua script): a
key-authenticated request's address window, the failed-authentication gate and its key's
windows together.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from pms_backend.monitoring import redis_outage

logger = logging.getLogger(__name__)

_PERIODS = {
    **dict.fromkeys(("s", "sec", "second"), 1),
    **dict.fromkeys(("m", "min", "minute"), 60),
    **dict.fromkeys(("h", "hour"), 3600),
    **dict.fromkeys(("d", "day"), 86400),
}
MAX_PERIOD_SECONDS = 86400
MAX_COUNT = 1_000_000_000
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        return _parse(text)


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> Rate:
    match = _RATE.match(text.lower())
    if not match or match.group(3) not in _PERIODS:
        raise ValueError(f"rate {text!r} is not like '600/minute' or '10/5m'")
    count = int(match.group(1))
    seconds = int(match.group(2) or 1) * _PERIODS[match.group(3)]
    # A zero period divides by zero at every request and a huge one overflows the
    # counter's expiry: such a rate is no rate (the settings service refuses to store it).
    if not 1 <= seconds <= MAX_PERIOD_SECONDS:
        raise ValueError(f"rate {text!r} needs a period from 1 second to 1 day")
    if count > MAX_COUNT:
        raise ValueError(f"rate {text!r} allows more than {MAX_COUNT:,} requests")
    return Rate(count, seconds)


@dataclass(frozen=True)
class Verdict:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends

    @property
    def allowed(self) -> bool:
        return self.remaining >= 0


# (bucket, identity, rate): one fixed window, for example ("ip", "203.0.113.7", 1200/min).
Bucket = tuple[str, str, Rate]


@dataclass(frozen=True)
class Outcome:
    """What one ``count`` found."""

    # One per bucket, in order; None where the bucket was not counted because the request
    # was already refused (by an earlier bucket, or by the gate).
    verdicts: list[Verdict | None]
    gate_count: int  # the gate's count when it was read (0 if it never was)
    gate_reset: int  # seconds until the gate's window ends

    def refused_by_gate(self, gate: Bucket | None) -> bool:
        return gate is not None and self.gate_count >= gate[2].count

    def counted(self) -> list[Verdict]:
        return [v for v in self.verdicts if v is not None]

    def verdict(self, index: int) -> Verdict:
        """The verdict of a bucket the caller knows was counted (nothing refused before it)."""
        verdict = self.verdicts[index]
        if verdict is None:
            raise LookupError(f"bucket {index} was not counted")
        return verdict


def rate(name: str) -> Rate:
    return Rate.parse(settings.PMS_RATE_LIMITS[name])


def _key(bucket: str, ident: str, r: Rate, now: float) -> str:
    return f"rl:{bucket}:{ident}:{int(now // r.seconds)}"


def _reset(r: Rate, now: float) -> int:
    return int((int(now // r.seconds) + 1) * r.seconds - now) + 1


# KEYS: the windows in order, then the gate (when ARGV[2] > 0). ARGV: cost, the gate's
# limit (0: no gate), how many windows come before the gate, then TTL and limit of each
# window. Counting stops at the first window past its limit, and before any window after
# the gate when the gate's count has reached its limit: a refused request spends nothing
# further. Returns {gate count, the count of each window counted}.
_SCRIPT = """
local cost, gate_limit, gate_at = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local windows = #KEYS
if gate_limit > 0 then windows = windows - 1 end
local out = {0}
for i = 1, windows do
  if gate_limit > 0 and i == gate_at + 1 then
    out[1] = tonumber(redis.call('GET', KEYS[#KEYS]) or 0)
    if out[1] >= gate_limit then return out end
  end
  local n = redis.call('INCRBY', KEYS[i], cost)
  if n == cost then redis.call('EXPIRE', KEYS[i], ARGV[2 + 2 * i]) end
  out[i + 1] = n
  if n > tonumber(ARGV[3 + 2 * i]) then return out end
end
if gate_limit > 0 and gate_at == windows then
  out[1] = tonumber(redis.call('GET', KEYS[#KEYS]) or 0)
end
return out
"""
_script = None


def count(
    buckets: list[Bucket], *, gate: Bucket | None = None, gate_at: int = 0, cost: int = 1
) -> Outcome:
    """Count one request against each bucket, in order, in one round trip to Redis.

    ``gate`` is a bucket that is read, not counted, after the first ``gate_at`` buckets:
    once its count has reached its limit the remaining buckets are left alone (the caller
    refuses the request). Counting also stops after the first bucket past its limit, so
    a refused request spends no later bucket's budget.
    """
    if gate is not None and not 0 <= gate_at <= len(buckets):
        raise ValueError(f"gate_at {gate_at} is outside 0..{len(buckets)}")
    now = time.time()
    keys = [_key(name, ident, r, now) for name, ident, r in buckets]
    gate_reset = _reset(gate[2], now) if gate is not None else 0
    try:
        gate_count, counts = _count(buckets, keys, gate, gate_at, cost, now)
    except Exception as exc:  # the limiter must never take the API down with it
        if redis_outage.unreachable(exc):
            redis_outage.report("rate limits", exc)
        else:
            logger.warning("rate-limit store failed; letting the request through", exc_info=True)
        return Outcome([Verdict(r.count, r.count, _reset(r, now)) for _, _, r in buckets], 0, 0)
    verdicts: list[Verdict | None] = [
        Verdict(r.count, r.count - n, _reset(r, now))
        for (_, _, r), n in zip(buckets, counts, strict=False)
    ]
    verdicts += [None] * (len(buckets) - len(counts))
    return Outcome(verdicts, gate_count, gate_reset)


def hit(buckets: list[Bucket], *, cost: int = 1) -> list[Verdict]:
    """Count one request against each bucket (up to the first one it exceeds); return
    the verdicts of the buckets counted."""
    return count(buckets, cost=cost).counted()


def peek(bucket: str, ident: str, r: Rate) -> int:
    """Return the current count of a bucket without adding to it."""
    try:
        return int(cache.get(_key(bucket, ident, r, time.time())) or 0)
    except Exception:
        return 0


def _redis_client():
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        return None
    return client.get_client(write=True)


def _count(
    buckets: list[Bucket],
    keys: list[str],
    gate: Bucket | None,
    gate_at: int,
    cost: int,
    now: float,
) -> tuple[int, list[int]]:
    gate_key = _key(gate[0], gate[1], gate[2], now) if gate is not None else None
    redis = _redis_client()
    if redis is not None:
        return _count_in_redis(redis, buckets, keys, gate, gate_key, gate_at, cost)
    return _count_locally(buckets, keys, gate, gate_key, gate_at, cost)


def _count_in_redis(
    redis: Any,
    buckets: list[Bucket],
    keys: list[str],
    gate: Bucket | None,
    gate_key: str | None,
    gate_at: int,
    cost: int,
) -> tuple[int, list[int]]:
    global _script
    if _script is None:
        _script = redis.register_script(_SCRIPT)
    redis_keys = [cache.make_key(key) for key in keys]
    args = [cost, gate[2].count if gate is not None else 0, gate_at]
    for _, _, r in buckets:
        args += (r.seconds + 1, r.count)
    if gate_key is not None:
        redis_keys.append(cache.make_key(gate_key))
    gate_count, *counts = _script(keys=redis_keys, args=args, client=redis)
    return int(gate_count), [int(n) for n in counts]


def _count_locally(
    buckets: list[Bucket],
    keys: list[str],
    gate: Bucket | None,
    gate_key: str | None,
    gate_at: int,
    cost: int,
) -> tuple[int, list[int]]:
    """The local cache: the same rules, one call at a time (a single process's counters)."""
    gate_count, counts = 0, []
    for i, (key, (_, _, r)) in enumerate(zip(keys, buckets, strict=True)):
        if gate is not None and i == gate_at:
            gate_count = int(cache.get(gate_key) or 0)
            if gate_count >= gate[2].count:
                break
        cache.add(key, 0, r.seconds + 1)
        counts.append(cache.incr(key, cost))
        if counts[-1] > r.count:
            break
    else:
        if gate is not None and gate_at == len(buckets):
            gate_count = int(cache.get(gate_key) or 0)
    return gate_count, counts


def most_constraining(verdicts: list[Verdict]) -> Verdict:
    return min(verdicts, key=lambda v: (v.remaining, -v.reset))
