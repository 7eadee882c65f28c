"""Running test code in real threads against the database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from pms_backend.errors import DomainError


def in_thread(fn):
    """Wrap ``fn`` to run in a thread of its own: this thread's database connection is
    closed afterwards, whatever happens (else the test database cannot be dropped)."""

    def run(*args):
        try:
            return fn(*args)
        finally:
            connection.close()

    return run


def race(*calls) -> list[str]:
    """Run ``calls`` at once, each in a thread of its own released with the others by a
    barrier; return each one's outcome, in the order given: ``"ok"``, or the code of the
    domain error it raised."""
    barrier = threading.Barrier(len(calls))

    def run(call) -> str:
        barrier.wait(timeout=30)
        try:
            call()
        except DomainError as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(in_thread(run), calls))


def until_another_waits_for_my_locks(timeout: float = 60, *, or_until=None) -> None:
    """In a thread holding locks in its transaction: return once another session is
    waiting for one of them (PostgreSQL's pg_blocking_pids), or once the event
    ``or_until`` is set: an ordering rather than a sleep that a busy machine may outlast;
    fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while or_until is None or not or_until.is_set():
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted"
                " AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )
            if cursor.fetchone()[0]:
                return
            assert time.monotonic() < deadline, "no session came to wait for this one's locks"
            time.sleep(0.01)
