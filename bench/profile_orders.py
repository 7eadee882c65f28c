"""What one ``POST /api/v1/orders/`` costs, next to one ``GET /api/v1/ping/``: a guide for
work on order placement (``scripts/bench.sh orders`` is the measurement of record).

Runs the WSGI application in this process (Django's sync stack, as a sync WSGI server
would, without the server's own parsing) in production mode against PostgreSQL and Redis,
and reports per request: this process's CPU (``time.process_time``), the CPU of the
PostgreSQL backends serving its database (from ``/proc/<pid>/stat``), and the SQL
statements it sent.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pms_profile \\
    REDIS_URL=redis://127.0.0.1:6379/5 \\
    .venv/bin/python bench/profile_orders.py [--orders 40] [--lines 1 5] [--rounds 10] [--setup]

``--setup`` migrates the database and seeds products with stock (once). The database and
Redis database are the caller's: use ones nobody else uses. Run it under py-spy
(``py-spy record -o profile.svg -- .venv/bin/python bench/profile_orders.py``) to see
where the time goes.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(60))
os.environ.setdefault("PMS_AUDIT_CHAIN_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# A fixed key ring, so orders written by one run can be read by the next.
os.environ.setdefault("PMS_ENCRYPTION_KEYS", base64.b64encode(b"p" * 32).decode())
os.environ.setdefault("PMS_RATE_LIMIT_IP", "1000000000/minute")
os.environ.setdefault("PMS_RATE_LIMIT_KEY", "1000000000/minute")
# Limits stay on (their work is part of a request's cost), but never refuse.
os.environ.setdefault("PMS_RATE_LIMIT_ORDERS", "1000000000/minute")

STOCK_PER_PRODUCT = 1_000_000


def setup(products: int) -> None:
    from django.core.management import call_command

    from audit.actors import Actor
    from catalog.models import Product
    from inventory.models import InventoryMovement
    from inventory.stocktake import stock_set_levels

    call_command("migrate", verbosity=0)
    if Product.objects.filter(status="published", variants__isnull=True).count() < products:
        call_command(
            "seed_database", products=products * 2, seed=1, no_progress=True, catalog_only=True
        )
    ids = list(
        Product.objects.filter(status="published", variants__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    # The stocktake service: rows locked in pk order, in batches, ledger and audit kept.
    stock_set_levels(
        actor=Actor.system("profile"),
        targets=dict.fromkeys(ids, STOCK_PER_PRODUCT),
        kind=InventoryMovement.Kind.RECEIPT,
        reason="profile stock",
    )


def storefront_key() -> str:
    from audit.actors import Actor
    from pms_backend.apikeys.services import api_key_create

    _, raw = api_key_create(
        name="profile storefront", scopes=["storefront"], actor=Actor.system("profile")
    )
    return raw


class Wsgi:
    """Call the WSGI application as a server would, one request at a time."""

    def __init__(self, key: str) -> None:
        from django.core.wsgi import get_wsgi_application

        self.app = get_wsgi_application()
        self.key = key
        self.status = ""

    def _start(self, status, headers, exc_info=None):
        self.status = status

    def request(self, method: str, path: str, body: bytes = b"", **headers: str) -> tuple:
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_AUTHORIZATION": f"Api-Key {self.key}",
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/json",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for name, value in headers.items():
            environ["HTTP_" + name.upper()] = value
        result = self.app(environ, self._start)
        try:
            content = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return int(self.status.split()[0]), content


class Gunicorn:
    """The same requests to a real gunicorn process (sync worker, WSGI), as production
    serves HTTP; CPU is read from /proc for the server's processes."""

    def __init__(self, key: str, workers: int = 1) -> None:
        import socket
        import subprocess

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.key = key
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "pms_backend.wsgi:application",
                "--workers",
                str(workers),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/health/live")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("gunicorn did not come up (is it installed in the venv?)")

    def request(self, method: str, path: str, body: bytes = b"", **headers: str) -> tuple:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            names = {name.replace("_", "-").title(): value for name, value in headers.items()}
            connection.request(
                method,
                path,
                body=body or None,
                headers={
                    "Authorization": f"Api-Key {self.key}",
                    "Content-Type": "application/json",
                    **names,
                },
            )
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def cpu(self) -> float:
        """CPU seconds used so far by the server (its process group)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == self.process.pid:  # the process group gunicorn leads
                total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def stop(self) -> None:
        import signal

        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


def order_body(product_ids: list[int], n: int) -> bytes:
    return json.dumps(
        {
            "items": [{"product": pid, "quantity": 1} for pid in product_ids],
            "customer": {"email": f"c{n}@example.com", "name": "Profile Customer"},
            "shipping_address": {
                "line1": "1 Main Street",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
        }
    ).encode()


def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to ``database``."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname="postgres"
    ) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [database]
        ).fetchall()
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for (pid,) in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def measure(count: int, send, database: str, clock) -> dict[str, float]:
    """Send ``count`` requests; return CPU ms per request of the server (``clock``) and
    of PostgreSQL."""
    pg_before = backend_cpu(database)
    cpu_before, wall_before = clock(), time.perf_counter()
    for n in range(count):
        send(n)
    cpu = clock() - cpu_before
    wall = time.perf_counter() - wall_before
    pg_after = backend_cpu(database)
    pg = sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items())
    return {
        "cpu_ms": 1000 * cpu / count,
        "pg_cpu_ms": 1000 * pg / count,
        "wall_ms": 1000 * wall / count,
    }


def best_row(rows: list[dict[str, float]]) -> dict[str, float]:
    """The round that cost least CPU: the others lost CPU time to the machine's other work
    (caches, shared cores); the median is reported too."""
    best = min(rows, key=lambda row: row["cpu_ms"])
    return best | {
        f"median_{key}": statistics.median(row[key] for row in rows)
        for key in ("cpu_ms", "pg_cpu_ms")
    }


def calls_per_request(send, count: int = 20) -> float:
    """Python function calls per request (cProfile's count): unlike CPU time, the same
    from run to run on a busy machine, so it shows small savings."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for n in range(count):
        send(n)
    profile.disable()
    return pstats.Stats(profile).total_calls / count


def statements(send) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        send(0)
    return [q["sql"] for q in ctx.captured_queries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=40, help="orders per round")
    parser.add_argument("--pings", type=int, default=200, help="pings per round")
    parser.add_argument("--lines", type=int, nargs="+", default=[1, 5], help="lines per order")
    parser.add_argument(
        "--gunicorn", action="store_true", help="through a gunicorn process (sync worker)"
    )
    parser.add_argument("--setup", action="store_true", help="migrate and seed first")
    parser.add_argument("--products", type=int, default=2000, help="products to seed")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each load")
    parser.add_argument("--show-sql", action="store_true", help="print each order's statements")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    from catalog.models import Product

    if settings.DATABASE_BACKEND != "postgresql" or not settings.REDIS_URL:
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL")
    if args.setup:
        setup(args.products)
    database = settings.DATABASES["default"]["NAME"]
    ids = list(
        Product.objects.filter(status="published", stock__on_hand__gt=0)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        raise SystemExit("no products with stock: run with --setup once")
    client = Gunicorn(storefront_key()) if args.gunicorn else Wsgi(storefront_key())
    clock = client.cpu if args.gunicorn else time.process_time
    try:
        report(args, client, clock, ids, database)
    finally:
        if args.gunicorn:
            client.stop()


def report(args, client, clock, ids: list[int], database: str) -> None:
    loads = _loads(args, client, ids)
    print(f"{len(ids)} products with stock; database {database}; {args.rounds} rounds")
    # Many short rounds alternating the loads, each load's figures from its cheapest
    # round: other work on the machine moves CPU times by a fifth from minute to minute.
    rounds: dict[str, list] = {name: [] for name in loads}
    for _ in range(args.rounds):
        for name, (count, send) in loads.items():
            rounds[name].append(measure(count, send, database, clock))
    results = {name: best_row(rows) for name, rows in rounds.items()}
    in_process = not args.gunicorn
    if in_process:
        _count_calls(args, loads, results)
    for name, row in results.items():
        print(_line(name, row, results["ping"], in_process))


def _loads(args, client, ids: list[int]) -> dict[str, tuple[int, object]]:
    """The loads by name, ``(requests per round, send)``, after a warm-up."""
    run = secrets.token_hex(4)
    placed = 0

    def ping(n: int) -> None:
        status, content = client.request("GET", "/api/v1/ping/")
        assert status == 200, content

    def order_sender(lines: int):
        def send(n: int) -> None:
            nonlocal placed
            placed += 1
            at = (placed * lines) % (len(ids) - lines)
            body = order_body(ids[at : at + lines], placed)
            status, content = client.request(
                "POST", "/api/v1/orders/", body, IDEMPOTENCY_KEY=f"profile-{run}-{placed}"
            )
            assert status == 201, content

        return send

    for _ in range(50):  # warm up: imports, caches, the pool, the key's last-used stamp
        ping(0)
        order_sender(1)(0)
    return {"ping": (args.pings, ping)} | {
        f"order_{lines}": (args.orders, order_sender(lines)) for lines in args.lines
    }


def _count_calls(args, loads: dict, results: dict[str, dict]) -> None:
    """Python calls per request of each load, statements per order (in this process)."""
    for name, (_count, send) in loads.items():
        results[name]["calls"] = calls_per_request(send)
    for lines in args.lines:
        sql = statements(loads[f"order_{lines}"][1])
        results[f"order_{lines}"]["statements"] = len(sql)
        if args.show_sql:
            print(f"{lines}-line order:")
            for statement in sql:
                print("   ", statement[:160])


def _line(name: str, row: dict, ping: dict, in_process: bool) -> str:
    label = (
        "GET /api/v1/ping/"
        if name == "ping"
        else f"POST /orders/ {name[6:]} line{'' if name[6:] == '1' else 's'}"
    )
    line = (
        f"{label:<24} CPU {row['cpu_ms']:6.2f} ms/req ({row['cpu_ms'] / ping['cpu_ms']:4.1f}x "
        f"ping, median {row['median_cpu_ms']:.2f})"
        f"   PostgreSQL CPU {row['pg_cpu_ms']:5.2f} ms/req"
        f" (median {row['median_pg_cpu_ms']:.2f})"
        f"   wall {row['wall_ms']:6.2f} ms/req"
    )
    if in_process:
        line += f"   {row['calls']:,.0f} Python calls ({row['calls'] / ping['calls']:.1f}x)"
        if "statements" in row:
            line += f"   {row['statements']} statements"
    return line


if __name__ == "__main__":
    main()
