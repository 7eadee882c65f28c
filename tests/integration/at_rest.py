"""What a database and a Redis database hold at rest, dumped as text for tests to search."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection


def database_dump() -> str:
    """Every row of every table of the test database, all columns, as text (PostgreSQL:
    each row as its own text form; SQLite: each row's values)."""
    postgres = connection.vendor == "postgresql"
    out = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            name = connection.ops.quote_name(table)
            # Table names from the catalog, not from input.
            if postgres:
                cursor.execute(f"SELECT t::text FROM {name} t")  # noqa: S608
            else:
                cursor.execute(f"SELECT * FROM {name}")  # noqa: S608
            out.extend(f"{table}: {row[0] if postgres else row}" for row in cursor.fetchall())
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
