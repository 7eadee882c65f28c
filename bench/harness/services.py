"""The services the benchmarks use: their own PostgreSQL databases and Redis database."""

from __future__ import annotations

import os
import re
from typing import Any

from harness.common import BenchError

# The benchmarks drop and create databases: only ever their own (pms_bench, pms_bench_seed,
# ...), never the ones CI, tests or other people use. Redis databases 0-2 are taken too.
BENCH_DATABASE = re.compile(r"pms_bench[a-z0-9_]{0,40}")
FORBIDDEN_REDIS_DBS = {0, 1, 2}


def pg_admin_url() -> str:
    return os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    base = pg_admin_url().rsplit("/", 1)[0]
    return f"{base}/{name}"


def check_database_name(name: str) -> None:
    if not BENCH_DATABASE.fullmatch(name):
        raise BenchError(f"refusing to touch the database {name!r}: not pms_bench*")


def check_redis_url(url: str) -> None:
    match = re.fullmatch(r"redis://(127\.0\.0\.1|localhost)(:\d+)?/(\d+)", url)
    if not match:
        raise BenchError(f"BENCH_REDIS_URL must be redis://127.0.0.1[:port]/<db>, not {url!r}")
    if int(match.group(3)) in FORBIDDEN_REDIS_DBS:
        raise BenchError(f"refusing Redis database {match.group(3)}: 0-2 belong to others")


def recreate_database(name: str) -> str:
    """Drop and create the database ``name``; return its URL."""
    import psycopg

    check_database_name(name)
    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        # A scratch database: benchmarks flush it between runs, and the audit tables refuse
        # TRUNCATE unless the database says so (as the test database does; see
        # audit/migrations/0005_truncate_trigger.py).
        conn.execute(f"ALTER DATABASE \"{name}\" SET pms.audit_truncate = 'allowed'")
    return database_url(name)


def drop_database(name: str) -> None:
    import psycopg

    check_database_name(name)
    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def vacuum_analyze(url: str) -> None:
    """Bring the tables to the state autovacuum keeps them in (statistics, visibility map)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def flush_redis(url: str) -> None:
    import redis

    check_redis_url(url)
    redis.Redis.from_url(url).flushdb()


def db_scalar(url: str, sql: str, params: list | None = None) -> Any:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params or []).fetchone()[0]


def mark_events_dispatched(url: str) -> int:
    """Mark every undispatched event dispatched: history, not load (nor an outbox backlog)."""
    return db_scalar(
        url,
        "WITH d AS (UPDATE events_event SET dispatched_at = now() "
        "WHERE dispatched_at IS NULL RETURNING 1) SELECT count(*) FROM d",
    )


def deadlocks(db: str) -> int:
    """Deadlocks PostgreSQL has counted in the database ``db`` so far."""
    return int(
        db_scalar(pg_admin_url(), "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", [db])
        or 0
    )
