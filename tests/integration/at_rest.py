"""What a database and a Redis database hold at rest, dumped as text for tests to search."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection


def database_dump() -> str:
    """Every row of every table of the test database, all columns, as text."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        tables = [row[0] for row in cursor.fetchall()]
        out = []
        for table in tables:
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 (catalog names)
            out.extend(f"{table}: {row[0]}" for row in cursor.fetchall())
    return "\n".join(out)


def redis_dump() -> str:
    """Every key of the test's Redis database and its value, whatever its type."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value = client.get(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            value = None
        out.append(f"{key!r} {kind} {value!r}")
    return "\n".join(out)
