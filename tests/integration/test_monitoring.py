"""Operations: JSON logs that carry the request id, /metrics for allowed scrapers only
(summed over server processes), the request id carried to webhook receivers, readiness."""

from __future__ import annotations

import base64
import io
import json
import logging
import logging.config
import os
import secrets
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from pms_backend.events.models import Event
from pms_backend.monitoring.log_config import logging_config
from tests.conftest import order_body
from tests.integration.order_support import place
from tests.integration.websockets import Communicator

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def scrape(client: Client | None = None, **headers) -> dict[tuple[str, tuple], float]:
    """Return ``{(sample name, sorted labels): value}`` from /metrics."""
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- logs ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_json_log_line_carries_the_request_id(client):
    config = logging_config(json_lines=True, level="INFO")
    configurator = logging.config.DictConfigurator(config)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configurator.configure_formatter(config["formatters"]["json"]))
    handler.addFilter(configurator.configure_filter(config["filters"]["request_id"]))
    logging.getLogger().addHandler(handler)
    try:
        response = client.get("/no/such/page", HTTP_X_REQUEST_ID="req-7f3a")
        logging.getLogger("pms.test").warning("outside any request")
    finally:
        logging.getLogger().removeHandler(handler)

    assert response.status_code == 404 and response["X-Request-ID"] == "req-7f3a"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (not_found,) = [line for line in lines if line["logger"] == "django.request"]
    assert not_found["request_id"] == "req-7f3a"
    assert not_found["level"] == "WARNING" and "/no/such/page" in not_found["message"]
    assert not_found["timestamp"].endswith("+00:00")
    assert lines[-1]["message"] == "outside any request" and lines[-1]["request_id"] == "-"


def _run_django(code: str, **env) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PMS_", "LOG_"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="pms_backend.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        PMS_ENCRYPTION_KEYS=base64.b64encode(secrets.token_bytes(32)).decode(),
        PMS_AUDIT_CHAIN_KEY=secrets.token_urlsafe(32),
        **env,
    )
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


LOG_UNDER_A_REQUEST = """
    import logging, django
    django.setup()
    from pms_backend.monitoring.request_context import bind_request_id
    bind_request_id("req-prod-1")
    logging.getLogger("pms.test").warning("stock is low")
"""


def test_production_writes_json_lines_and_development_plain_text():
    production = _run_django(LOG_UNDER_A_REQUEST, DJANGO_DEBUG="false")
    lines = [json.loads(line) for line in production.stderr.splitlines()]
    assert lines[-1]["message"] == "stock is low"
    assert lines[-1]["request_id"] == "req-prod-1" and lines[-1]["logger"] == "pms.test"

    development = _run_django(LOG_UNDER_A_REQUEST, DJANGO_DEBUG="true")
    last = development.stderr.splitlines()[-1]
    assert last.endswith("WARNING pms.test [req-prod-1] stock is low"), last


# --- the request id travels with the events it caused ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_request_id_reaches_the_webhook_receiver(receiver, storefront, make_product, receive):
    from audit.actors import Actor
    from webhooks.services import endpoint_create

    endpoint_create(actor=Actor.system("tests"), url=receiver.url, event_types=["order.created"])
    product = make_product("published")
    receive(product, 5)

    response = storefront.post(
        "/api/v1/orders/",
        order_body((product, 2)),
        format="json",
        HTTP_IDEMPOTENCY_KEY="order-1",
        HTTP_X_REQUEST_ID="trace-42",
    )
    assert response.status_code == 201, response.content

    event = Event.objects.get(type="order.created")
    assert event.request_id == "trace-42"
    (received,) = receiver.wait_for(1)
    assert received.headers["x-pms-request-id"] == "trace-42"
    assert received.headers["webhook-id"] == event.event_id
    # Events written outside a request carry no id, and their deliveries no header.
    assert Event.objects.get(type="product.published").request_id == ""


# --- /metrics --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_metrics_count_the_traffic(receiver, storefront, admin_api, make_product, receive):
    from audit.actors import Actor
    from webhooks.services import endpoint_create

    endpoint_create(actor=Actor.system("tests"), url=receiver.url, event_types=["order.created"])
    a, b = make_product("published"), make_product("published")
    before = scrape()

    receive(a, 10)
    assert place(storefront, order_body((a, 3))).status_code == 201
    receiver.wait_for(1)
    moved = admin_api.post(
        "/api/v1/inventory/movements/",
        {"product": b.pk, "quantity": 4, "kind": "receipt", "reason": "delivery"},
        format="json",
    )
    assert moved.status_code == 201, moved.content
    for product in (a, b):
        assert storefront.get(f"/api/v1/products/{product.pk}/").status_code == 200

    after = scrape()

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("pms_orders_placed_total") == 1
    assert grew("pms_stock_movements_total", kind="receipt") == 2
    assert grew("pms_stock_movements_total", kind="reserve") == 1
    assert grew("pms_webhook_deliveries_total", outcome="succeeded") == 1
    assert grew("pms_celery_tasks_total", task="events.dispatch", outcome="success") >= 2
    assert grew("pms_celery_tasks_total", task="webhooks.deliver_batch", outcome="success") == 1
    assert (
        grew("pms_http_requests_total", endpoint="v1:order-list", method="POST", status="2xx") == 1
    )
    assert (
        grew("pms_http_requests_total", endpoint="v1:movement-list", method="POST", status="2xx")
        == 1
    )
    # Two products, one series: the route's name, never the path with its id.
    assert (
        grew("pms_http_requests_total", endpoint="v1:product-detail", method="GET", status="2xx")
        == 2
    )
    assert (
        grew("pms_http_request_duration_seconds_count", endpoint="v1:product-detail", method="GET")
        == 2
    )
    assert not any("/api/" in dict(labels).get("endpoint", "") for _, labels in after)
    assert ("pms_outbox_lag_seconds", ()) in after
    assert ("pms_websocket_connections", ()) in after


@pytest.mark.django_db
def test_outbox_lag_is_the_age_of_the_oldest_undispatched_event():
    assert value(scrape(), "pms_outbox_lag_seconds") == 0
    old = Event.objects.create(type="stock.updated", topic="stock", data={})
    Event.objects.create(type="stock.updated", topic="stock", data={})
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=90))

    samples = scrape()

    assert 90 <= value(samples, "pms_outbox_lag_seconds") < 120
    assert value(samples, "pms_outbox_undispatched_events") == 2


@pytest.mark.django_db
def test_celery_failures_are_counted(monkeypatch):
    from pms_backend.events import relay, tasks

    def broken():
        raise RuntimeError("database went away")

    before = scrape()
    monkeypatch.setattr(relay, "sweep", broken)
    assert tasks.sweep.apply().failed()

    after = scrape()
    labels = {"task": "events.sweep", "outcome": "failure"}
    assert (
        value(after, "pms_celery_tasks_total", **labels)
        - value(before, "pms_celery_tasks_total", **labels)
        == 1
    )
    duration = {"task": "events.sweep"}
    assert value(after, "pms_celery_task_duration_seconds_count", **duration) > value(
        before, "pms_celery_task_duration_seconds_count", **duration
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_open_websockets_are_counted(make_key):
    from pms_backend.asgi import application

    key = await database_sync_to_async(make_key)("storefront")
    gauge = await database_sync_to_async(lambda: value(scrape(), "pms_websocket_connections"))()
    sockets = [
        Communicator(
            application, "/ws/v1/events/", headers=[(b"authorization", f"Api-Key {key}".encode())]
        )
        for _ in range(3)
    ]
    for socket in sockets:
        assert (await socket.connect())[0]

    opened = await database_sync_to_async(lambda: value(scrape(), "pms_websocket_connections"))()
    for socket in sockets:
        await socket.disconnect()
    closed = await database_sync_to_async(lambda: value(scrape(), "pms_websocket_connections"))()

    assert opened == gauge + 3 and closed == gauge


@pytest.mark.django_db
def test_metrics_are_refused_to_unauthorised_callers(settings):
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    refused = outsider.get("/metrics")
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "metrics_forbidden"
    assert b"pms_" not in refused.content

    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::ffff:192.168.1.4").get("/metrics").status_code == 200
    assert Client().post("/metrics").status_code == 405

    settings.PMS_METRICS_TOKEN = "scrape-token-0123456789"
    assert outsider.get("/metrics").status_code == 401
    assert outsider.get("/metrics")["WWW-Authenticate"].startswith("Bearer")
    wrong = {"HTTP_AUTHORIZATION": "Bearer scrape-token-wrong"}
    assert outsider.get("/metrics", **wrong).status_code == 401
    assert Client().get("/metrics", **wrong).status_code == 401  # a wrong token is never ok
    right = {"HTTP_AUTHORIZATION": "Bearer scrape-token-0123456789"}
    assert outsider.get("/metrics", **right).status_code == 200

    settings.PMS_METRICS_ALLOWED_NETWORKS = []  # token only
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", **right).status_code == 200


# --- many processes --------------------------------------------------------------------


WRITER = """
    import os, sys
    from pms_backend.monitoring import metrics
    n = int(sys.argv[1])
    for _ in range(n):
        metrics.observe_request(method="GET", endpoint="v1:product-list", status=200, seconds=0.02)
    metrics.ORDERS_PLACED.inc(n)
    metrics.WEBSOCKET_CONNECTIONS.inc(2)
    sys.stdout.flush()
    if sys.argv[2] == "killed":
        os._exit(0)  # no clean exit: its live gauge must be dropped by the scrape
    metrics.mark_this_process_dead()
"""

READER = """
    import os, sys, django
    django.setup()
    from pms_backend.monitoring import metrics
    if sys.argv[1] == "alive":
        metrics.WEBSOCKET_CONNECTIONS.inc(5)  # this process is alive while it scrapes
    sys.stdout.write(metrics.render().decode())
"""


def test_metrics_are_summed_over_server_processes(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS")},
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "pms_backend.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "REDIS_URL": "",
    }
    writers = [
        subprocess.Popen(
            [PYTHON, "-c", textwrap.dedent(WRITER), str(n), "killed" if n % 2 else "clean"],
            cwd=ROOT,
            env=env,
        )
        for n in range(1, 9)
    ]
    assert all(w.wait(60) == 0 for w in writers)

    started = time.perf_counter()
    reader = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(READER), "alive"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert time.perf_counter() - started < 30
    samples = parse(reader.stdout)

    labels = {"endpoint": "v1:product-list", "method": "GET", "status": "2xx"}
    assert value(samples, "pms_http_requests_total", **labels) == sum(range(1, 9))
    assert value(samples, "pms_orders_placed_total") == sum(range(1, 9))
    histogram = {"endpoint": "v1:product-list", "method": "GET", "le": "0.025"}
    assert value(samples, "pms_http_request_duration_seconds_bucket", **histogram) == 36
    # Every writer is gone (four were killed without a word): only the reader's 5 remain.
    assert value(samples, "pms_websocket_connections") == 5
    # The database is unreachable here: the scrape still answers, without the outbox gauges.
    assert ("pms_outbox_lag_seconds", ()) not in samples


def test_the_server_starts_each_run_with_an_empty_metrics_folder(tmp_path):
    from pms_backend.server import prepare_metrics_dir

    stale = tmp_path / "web-8123" / "counter_4242.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old samples")

    path = prepare_metrics_dir({"PMS_METRICS_DIR": str(tmp_path)}, 8123)

    assert path == tmp_path / "web-8123" and path.is_dir()
    assert [p.name for p in path.iterdir()] == ["server.pid"]
    assert (path / "server.pid").read_text() == str(os.getpid())
    # Another server's folder stays while it runs, and goes once it was killed.
    other = prepare_metrics_dir({"PMS_METRICS_DIR": str(tmp_path)}, 8124)
    assert path.is_dir() and other != path
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (path / "server.pid").write_text(dead)
    prepare_metrics_dir({"PMS_METRICS_DIR": str(tmp_path)}, 8124)
    assert not path.exists()


_RACE = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")
from pms_backend.server import prepare_metrics_dir
root, port = sys.argv[1], int(sys.argv[2])
lost = 0
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    path = prepare_metrics_dir({"PMS_METRICS_DIR": root}, port)
    (path / "counter_1.db").write_bytes(b"x")
    if not (path / "counter_1.db").exists():
        lost += 1
print(lost)
"""


def test_tiers_starting_together_never_remove_each_others_metrics(tmp_path):
    """Two tiers started at once (the scale-out test, a host running two): each reads the
    other's pid file, and a file read while it was being written once looked like a dead
    tier, so the live tier's folder went and its first metric write failed."""
    from pms_backend.server import BASE_DIR, prepare_metrics_dir

    # A pid file mid-write (created, not yet filled) is not a dead tier's.
    writing = tmp_path / "web-8200" / "server.pid"
    writing.parent.mkdir()
    writing.write_text("")
    prepare_metrics_dir({"PMS_METRICS_DIR": str(tmp_path)}, 8201)
    assert writing.parent.is_dir()

    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, str(tmp_path), str(port)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=BASE_DIR,
        )
        for port in (8300, 8301, 8302)
    ]
    outputs = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0]
    assert outputs == ["0", "0", "0"]


# --- readiness -------------------------------------------------------------------------


@pytest.mark.django_db
def test_ready_names_every_failed_dependency(monkeypatch):
    from pms_backend.monitoring import views

    def down():
        raise ConnectionError("refused")

    monkeypatch.setattr(views, "_check_broker", down)
    monkeypatch.setattr(views, "_check_cache", down)

    response = Client().get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["failures"] == ["cache", "broker"]
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"] == {
        "status": "error",
        "error": "ConnectionError",
        "ms": body["checks"]["broker"]["ms"],
    }
    assert "failures" not in Client().get("/health/live").json()
    assert sys.modules["pms_backend.monitoring.views"] is views
