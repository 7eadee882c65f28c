"""/metrics and logs from the real production server with several processes: counts are
summed over the processes, log lines are JSON with the request id, and the metrics
folder lives exactly as long as the server."""

from __future__ import annotations

import base64
import json
import os
import secrets
import time

import httpx
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ROOT, _database_url, _free_port, _stop, spawn, wait_live

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
PROCESSES = 3
REQUESTS = 60


def _samples(text: str) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _serving_pids(folder) -> set[str]:
    """The processes that wrote counter samples to the metrics folder."""
    files = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    return {name.rsplit("_", 1)[1] for name in files if name.startswith("counter_")}


def test_several_processes_one_scrape(transactional_db, tmp_path):
    port = _free_port()
    metrics_root = tmp_path / "metrics"
    log_path = tmp_path / "server.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PMS_", "DATABASE_", "REDIS_", "PROMETHEUS"))
    }
    env.update(
        DATABASE_URL=_database_url(),
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        PMS_ENCRYPTION_KEYS=base64.b64encode(secrets.token_bytes(32)).decode(),
        PMS_AUDIT_CHAIN_KEY=settings.PMS_AUDIT_CHAIN_KEY,
        PMS_SKIP_INSTALL="1",
        PMS_SKIP_MIGRATE="1",
        PMS_METRICS_DIR=str(metrics_root),
        PMS_METRICS_TOKEN="e2e-scrape-token",
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY=str(PROCESSES),
        PYTHONUNBUFFERED="1",
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    stale = metrics_root / f"web-{port}" / "counter_999999.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a previous run")
    base = f"http://127.0.0.1:{port}"
    process = spawn([str(ROOT / "scripts" / "start.sh")], env, log_path)
    try:
        wait_live(base, process, log_path)
        assert not stale.exists()
        # Requests (a new connection each) until at least two processes have served some
        # and written their samples: a fixed 2 s for the others to come up was too short
        # for a busy machine, and one process then served everything.
        deadline = time.monotonic() + 60
        while len(_serving_pids(metrics_root / f"web-{port}")) < 2:
            assert time.monotonic() < deadline, _serving_pids(metrics_root / f"web-{port}")
            assert httpx.get(f"{base}/health/live").status_code == 200
            time.sleep(0.05)
        before = _samples(
            httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer e2e-scrape-token"}).text
        )
        for _ in range(REQUESTS):
            assert httpx.get(f"{base}/health/live").status_code == 200
        missing = httpx.get(f"{base}/no/such/page", headers={"X-Request-ID": "e2e-trace-77"})
        assert missing.status_code == 404

        scrape = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer e2e-scrape-token"})
        assert scrape.status_code == 200
        after = _samples(scrape.text)
        key = (
            "pms_http_requests_total",
            (("endpoint", "health-live"), ("method", "GET"), ("status", "2xx")),
        )
        assert after[key] - before.get(key, 0) == REQUESTS
        # Statuses are counted by class: the 404 is a 4xx of the unmatched route.
        unmatched = (
            "pms_http_requests_total",
            (("endpoint", "<unmatched>"), ("method", "GET"), ("status", "4xx")),
        )
        assert after[unmatched] - before.get(unmatched, 0) == 1
        # The requests really were served by several processes.
        assert len(_serving_pids(metrics_root / f"web-{port}")) >= 2
        # 127.0.0.1 is allowed without the token; a wrong token never is.
        wrong = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    finally:
        _stop(process)

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    (not_found,) = [line for line in lines if line.get("request_id") == "e2e-trace-77"]
    assert not_found["logger"] == "django.request" and "/no/such/page" in not_found["message"]
    assert not (metrics_root / f"web-{port}").exists()
