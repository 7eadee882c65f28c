"""Serving benchmark (issue "Serving"): the server chosen, against its alternatives.

1. The framework's ceiling page (``bench/ceiling_app.py``: a constant DRF page of 20
   products, minimal middleware) on gunicorn (sync WSGI), uvicorn (ASGI) and granian
   (WSGI), the same worker count each.
2. The project's own ``GET /api/v1/ping/`` and cached product list, served three ways
   from one database: the production tier (``scripts/start.sh``: nginx, gunicorn,
   uvicorn for /ws/), uvicorn alone (what start.sh ran before: every sync view through
   the ASGI thread hand-off) and granian alone (WSGI).

Every figure in the same run, interleaved, with server CPU per request.
"""

from __future__ import annotations

import json
import os

from harness.common import PYTHON, ROOT, TMP_DIR, BenchError, counted, http_get, log
from harness.context import Context, benchmark
from harness.fixtures import seeded_catalog
from harness.loadgen import Load
from harness.servers import Server
from harness.services import drop_database, vacuum_analyze
from harness.stats import ratio_to

CEILING_SERVERS = ("gunicorn", "uvicorn", "granian")


def _project_server(ctx: Context, url: str, name: str, command: list[str]) -> Server:
    """The project on one server alone, without nginx (the same env as start.sh gets)."""
    metrics = TMP_DIR / f"metrics-{name}"
    metrics.mkdir(parents=True, exist_ok=True)
    env = {**ctx.env_for(url), "PROMETHEUS_MULTIPROC_DIR": str(metrics), "DATABASE_POOL": "false"}
    if name == "uvicorn":
        env["DATABASE_POOL"] = "true"  # what the ASGI server used: a pool per process
    server = Server(env, TMP_DIR / f"server-{name}.log", command)
    server.pid_file = f"server-{name}.pid"
    ctx.servers.append(server)
    workers = counted(ctx.args.workers, "worker process", "worker processes")
    log(f"starting the project on {name} alone ({workers})")
    server.start()
    return server


@benchmark("serving")
def bench_serving(ctx: Context) -> None:
    workers = str(ctx.args.workers)
    ceilings = {name: ctx.ceiling_server(name) for name in CEILING_SERVERS}
    loads = [Load(name, ["/api/v1/products/"], server=server) for name, server in ceilings.items()]
    m = ctx.measure(ceilings["gunicorn"], loads)
    for name in CEILING_SERVERS:
        ctx.row(
            f"ceiling page on {name} / on gunicorn",
            m[name],
            ratio=ratio_to(m[name], m["gunicorn"], "rps"),
        )
    ctx.stop_servers()

    db = f"{ctx.args.database}_serving"
    url = seeded_catalog(ctx, db, 1000)
    vacuum_analyze(url)
    key = ctx.api_key(url, "storefront")
    servers = {
        "tier": ctx.server(url, label="serving-tier"),
        "tier-granian": ctx.server(
            url, label="serving-tier-granian", extra_env={"PMS_HTTP_SERVER": "granian"}
        ),
        "uvicorn": _project_server(
            ctx,
            url,
            "uvicorn",
            [
                PYTHON,
                "-m",
                "uvicorn",
                "pms_backend.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--workers",
                workers,
                "--log-level",
                "warning",
                "--no-access-log",
                "--ws-per-message-deflate",
                "false",
            ],
        ),
        "granian": _project_server(
            ctx,
            url,
            "granian",
            [
                str(ctx_venv("granian")),
                "--interface",
                "wsgi",
                "--workers",
                workers,
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--log-level",
                "warning",
                "--no-ws",
                "pms_backend.wsgi:application",
            ],
        ),
    }
    list_path = "/api/v1/products/?page_size=20"
    status, _, body = http_get(
        servers["tier"].base + list_path, {"Authorization": f"Api-Key {key}"}
    )
    if status != 200 or not json.loads(body)["results"]:
        raise BenchError(f"the storefront list answered {status}")
    loads = []
    for name, server in servers.items():
        loads += [
            Load(f"ping {name}", ["/api/v1/ping/"], server=server),
            Load(f"list {name}", [list_path], key, ("X-Cache", "hit"), server=server),
        ]
    m = ctx.measure(servers["tier"], loads)
    labels = {
        "tier": "start.sh (nginx + gunicorn)",
        "tier-granian": "start.sh (nginx + granian)",
        "uvicorn": "uvicorn alone (before)",
        "granian": "granian WSGI alone",
    }
    for what, path in (("ping", "GET /api/v1/ping/"), ("list", "cached list (storefront)")):
        for name, label in labels.items():
            ctx.row(
                f"{path} on {label} / on start.sh",
                m[f"{what} {name}"],
                ratio=ratio_to(m[f"{what} {name}"], m[f"{what} tier"], "rps"),
            )
    ctx.stop_servers()
    if not ctx.args.keep:
        drop_database(db)


def ctx_venv(program: str):
    path = ROOT / ".venv" / "bin" / program
    if not os.access(path, os.X_OK):
        raise BenchError(f"{program} is not installed in .venv (pip install -e '.[dev]')")
    return path
