"""The production web tier as ``scripts/start.sh`` starts it: nginx on one address, gunicorn
(sync WSGI) behind it for HTTP, uvicorn (ASGI) for ``/ws/``; the client's address trusted
only from ``FORWARDED_ALLOW_IPS``; one supervisor that stops everything it started."""

from __future__ import annotations

import asyncio
import grp
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import websockets
from django.conf import settings

from pms_backend.server import run_dir_path
from tests.e2e.conftest import ROOT, _free_port, _stop, spawn, wait_live
from tests.e2e.processes import base_env

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def _env(port: int, tmp_path: Path, **extra: str) -> dict[str, str]:
    return base_env(
        settings.REDIS_URL or None,
        PMS_METRICS_DIR=str(tmp_path / "metrics"),
        # /metrics answers loopback only, so it shows which address the app saw.
        PMS_METRICS_ALLOWED_NETWORKS="127.0.0.0/8",
        HOST="127.0.0.1",
        PORT=str(port),
        **extra,
    )


def _tree(root_pid: int) -> dict[int, str]:
    """Every process below ``root_pid`` (pid -> command line)."""
    out = subprocess.run(
        ["ps", "-ww", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True, check=True
    ).stdout
    children: dict[int, list[tuple[int, str]]] = {}
    for line in out.splitlines():
        pid, ppid, args = line.strip().split(None, 2)
        children.setdefault(int(ppid), []).append((int(pid), args))
    found, todo = {}, [root_pid]
    while todo:
        for pid, args in children.get(todo.pop(), []):
            found[pid] = args
            todo.append(pid)
    return found


@pytest.fixture
def tier(transactional_db, tmp_path):
    """start.sh with 3 HTTP processes and 2 websocket processes."""
    port = _free_port()
    log_path = tmp_path / "server.log"
    env = _env(port, tmp_path, WEB_CONCURRENCY="3", WS_CONCURRENCY="2")
    process = spawn([str(ROOT / "scripts" / "start.sh")], env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_live(base, process, log_path)
        yield process, base, log_path
    finally:
        _stop(process)


def test_one_address_serves_http_by_gunicorn_and_websockets_by_uvicorn(tier, make_key):
    process, base, _ = tier

    def counts() -> tuple[int, int, int, list[str]]:
        procs = list(_tree(process.pid).values())
        nginx = sum("nginx: worker process" in p for p in procs)
        gunicorn = sum("gunicorn" in p and "pms_backend.wsgi" in p for p in procs)
        uvicorn = sum("pms_backend.server ws" in p or "multiprocessing" in p for p in procs)
        return nginx, gunicorn, uvicorn, procs

    # The tier answers as soon as one HTTP process is up; the others may still be forking
    # (CI once counted two gunicorn workers of three). Wait for them, then count exactly.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = counts()
        if found[:2] == (1, 1 + 3) and found[2] >= 1 + 2:
            break
        time.sleep(0.2)
    nginx, gunicorn, uvicorn, procs = found
    assert nginx == 1, procs
    assert gunicorn == 1 + 3, procs  # the master and WEB_CONCURRENCY workers
    assert uvicorn >= 1 + 2, procs  # uvicorn's supervisor and WS_CONCURRENCY workers

    ping = httpx.get(f"{base}/api/v1/ping/", headers={"X-Request-ID": "tier-trace-1"})
    assert ping.status_code == 200
    assert ping.json() == {"status": "ok"}
    assert ping.headers["X-Request-ID"] == "tier-trace-1"
    assert ping.headers["Server"] == "nginx"  # no version number given away
    assert "gunicorn" not in ping.headers.get("Server", "").lower()

    key = make_key("storefront")

    async def talk() -> dict:
        async with websockets.connect(base.replace("http", "ws") + "/ws/v1/events/") as ws:
            await ws.send(json.dumps({"type": "auth", "key": key}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    answer = asyncio.run(talk())
    assert answer["type"] == "authenticated", answer


def test_client_address_is_trusted_only_from_forwarded_allow_ips(transactional_db, tmp_path):
    """An X-Forwarded-For from an untrusted peer changes nothing; from a proxy listed in
    FORWARDED_ALLOW_IPS it names the client (here: an outside address, refused /metrics)."""
    outsider = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    for trusted, expected in (("", 200), ("127.0.0.1", 403)):
        port = _free_port()
        log_path = tmp_path / f"server-{port}.log"
        extra = {"FORWARDED_ALLOW_IPS": trusted} if trusted else {}
        process = spawn(
            [str(ROOT / "scripts" / "start.sh")],
            _env(port, tmp_path, WEB_CONCURRENCY="1", **extra),
            log_path,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_live(base, process, log_path)
            assert httpx.get(f"{base}/metrics").status_code == 200
            assert httpx.get(f"{base}/metrics", headers=outsider).status_code == expected
        finally:
            _stop(process)


def test_sigterm_stops_every_process_and_a_dead_part_stops_the_tier(tier):
    process, _, log_path = tier
    procs = _tree(process.pid)
    [gunicorn_master] = [pid for pid, args in procs.items() if "gunicorn" in args and _tree(pid)]
    # A part of the tier dies: the supervisor stops the rest and exits non-zero, so the
    # service manager restarts the whole tier (never half of it).
    os.kill(gunicorn_master, signal.SIGKILL)
    assert process.wait(40) != 0
    time.sleep(0.5)
    alive = [pid for pid in procs if _exists(pid)]
    assert alive == [], f"left running: {[procs[p] for p in alive]}"
    assert "stopping the tier" in log_path.read_text()


def test_sigterm_is_graceful_and_leaves_nothing(transactional_db, tmp_path):
    port = _free_port()
    log_path = tmp_path / "server.log"
    process = spawn(
        [str(ROOT / "scripts" / "start.sh")],
        _env(port, tmp_path, WEB_CONCURRENCY="2"),
        log_path,
    )
    base = f"http://127.0.0.1:{port}"
    wait_live(base, process, log_path)
    procs = _tree(process.pid)
    run_dir = run_dir_path({}, port)
    assert (run_dir / "http.sock").exists()
    mode = run_dir.stat().st_mode & 0o777
    if os.geteuid() == 0:
        # nginx's workers run unprivileged and reach the sockets through their group only.
        assert mode == 0o750, oct(mode)
        assert grp.getgrgid(run_dir.stat().st_gid).gr_name in ("www-data", "nogroup")
        workers = [a for a in procs.values() if "nginx: worker process" in a]
        assert workers
        owners = subprocess.run(
            ["ps", "-o", "user=", "-C", "nginx"], capture_output=True, text=True
        ).stdout.split()
        assert "www-data" in owners or "nobody" in owners, owners
    else:
        assert mode == 0o700, oct(mode)
    process.send_signal(signal.SIGTERM)  # the supervisor alone, as systemd's KillMode=mixed
    assert process.wait(40) == 0
    time.sleep(0.5)
    assert [pid for pid in procs if _exists(pid)] == []
    assert not run_dir.exists()
    assert not (tmp_path / "metrics" / f"web-{port}").exists()


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_second_tier_on_the_same_port_is_refused_and_the_first_keeps_serving(tier):
    """Starting start.sh again by hand must not clear the running tier's sockets."""
    _, base, _ = tier
    port = base.rsplit(":", 1)[1]
    env = _env(int(port), Path("/tmp"))
    again = subprocess.run(
        [str(ROOT / "scripts" / "start.sh")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0
    assert "already running" in again.stderr
    assert httpx.get(f"{base}/api/v1/ping/").status_code == 200


def test_methods_nginx_refuses_are_answered_by_the_app_with_allow(tier):
    _, base, _ = tier
    trace = httpx.request("TRACE", f"{base}/api/v1/ping/")
    assert trace.status_code == 405
    assert trace.headers["content-type"].startswith("application/problem+json")
    assert "GET" in trace.headers["Allow"]
    # Headers the processes behind nginx would trust are blanked by it: no 400 from
    # gunicorn for "contradictory scheme headers", no client-chosen method.
    spoofed = httpx.get(
        f"{base}/api/v1/ping/", headers={"X-Forwarded-Ssl": "on", "X-Pms-Method": "DELETE"}
    )
    assert spoofed.status_code == 200
