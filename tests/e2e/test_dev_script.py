"""scripts/dev.sh as a newcomer runs it: a working copy to a running shop in one command."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BANNER = re.compile(
    r"admin:\s+(?P<url>http://127\.0\.0\.1:(?P<port>\d+)/admin/)\s+user: (?P<user>\S+)"
    r"\s+password: (?P<password>\S+)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    """Run dev.sh in a copy of the project (own SQLite, own .env) on a free port."""
    project = tmp_path_factory.mktemp("dev") / "pms"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            ".env",
            "db.sqlite3*",
            "var",
            "staticfiles",
            "bench",
            "tests",
            "__pycache__",
            "*.egg-info",
            ".*_cache",
        ),
    )
    (project / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(project),
        "PORT": str(port),
        "PMS_DEMO_PRODUCTS": "30",
        # The copy shares this checkout's .venv: never reinstall it from there.
        "PMS_SKIP_INSTALL": "1",
    }
    log = project / "dev.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["scripts/dev.sh"],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            text = log.read_text()
            if BANNER.search(text):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
            assert process.poll() is None, f"dev.sh exited early:\n{text}"
            assert time.monotonic() < deadline, f"dev.sh did not come up:\n{text}"
            time.sleep(0.5)
        yield {"project": project, "port": port, "env": env, "log": log}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_dev_prints_a_working_admin_login_on_its_port(dev_server):
    banner = BANNER.search(dev_server["log"].read_text())

    assert int(banner["port"]) == dev_server["port"]
    with httpx.Client(base_url=f"http://127.0.0.1:{dev_server['port']}") as browser:
        login = browser.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
        response = browser.post(
            "/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": token,
                "username": banner["user"],
                "password": banner["password"],
                "next": "/admin/",
            },
            headers={"Referer": f"http://127.0.0.1:{dev_server['port']}/admin/login/"},
        )
        assert response.status_code == 302, response.text[:1000]
        assert response.headers["location"] == "/admin/"
        products = browser.get("/admin/catalog/product/")
        assert products.status_code == 200
        assert "DEMO1-" in products.text


def new_key(dev_server, name: str, scopes: str) -> str:
    """Make an API key as the banner says (``generate_api_key``); return it."""
    made = subprocess.run(
        [".venv/bin/python", "manage.py", "generate_api_key", "--name", name, "--scopes", scopes],
        cwd=dev_server["project"],
        env=dev_server["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.splitlines()[-1]


def test_dev_serves_the_demo_catalog_to_a_new_key(dev_server):
    key = new_key(dev_server, "me", "storefront")
    base = f"http://127.0.0.1:{dev_server['port']}/api/v1"

    anonymous = httpx.get(f"{base}/products/")
    listed = httpx.get(f"{base}/products/", headers={"Authorization": f"Api-Key {key}"})

    assert anonymous.status_code == 401
    assert listed.status_code == 200
    body = listed.json()
    assert 0 < body["count"] < 30  # the published part of the 30 demo products
    assert all(p["status"] == "published" for p in body["results"])


def test_dev_takes_a_first_order_from_its_demo_stock(dev_server):
    key = new_key(dev_server, "shop", "storefront")
    base = f"http://127.0.0.1:{dev_server['port']}/api/v1"
    headers = {"Authorization": f"Api-Key {key}"}
    products = httpx.get(f"{base}/products/", headers=headers).json()["results"]
    # A storefront reads a product's variants, each with its availability, on its page (a
    # product without variants lists itself as its one variant).
    stocked: dict[int, list[int]] = {}
    for product in products:
        page = httpx.get(f"{base}/products/{product['id']}/", headers=headers).json()
        assert page["variants"], page
        stocked[product["id"]] = [v["id"] for v in page["variants"] if v["available"] >= 2]
    well_stocked = [pid for pid, found in stocked.items() if found]
    assert len(well_stocked) > len(products) / 2  # the demo stock: most products well stocked

    placed = httpx.post(
        f"{base}/orders/",
        json={
            "items": [{"variant": stocked[well_stocked[0]][0], "quantity": 2}],
            "customer": {"email": "first@example.com", "name": "First Customer"},
            "shipping_address": {
                "line1": "1 High Street",
                "city": "London",
                "postal_code": "N1 9GU",
                "country": "GB",
            },
        },
        headers=headers | {"Idempotency-Key": "first-order"},
    )

    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "pending"
    # The demo's month of orders is there beside it, for staff to work through.
    manager = new_key(dev_server, "staff", "admin")
    with httpx.Client(base_url=base, headers={"Authorization": f"Api-Key {manager}"}) as staff:
        assert staff.get("/orders/").json()["count"] > 100
        for status in ("pending", "processing", "completed", "cancelled", "refunded"):
            assert staff.get("/orders/", params={"status": status}).json()["count"] > 0, status


def test_dev_answers_like_production_and_its_log_says_each_thing_once(dev_server):
    base = f"http://127.0.0.1:{dev_server['port']}"
    with httpx.Client(base_url=base) as client:
        missing = client.get("/api/v1/no-such-route/", headers={"Accept": "text/html"})
        root = client.get("/")
        banner_link = client.get("/api/v1/")

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert banner_link.headers["content-type"] == "application/problem+json"
    assert "/api/docs/" in banner_link.json()["detail"]
    assert root.status_code == 302
    assert root.headers["location"] == "/api/docs/"

    # The server logs the request after answering it: wait for the line (returns at once
    # when it is there; 10 s was little for a busy machine's dev server and its log).
    deadline = time.monotonic() + 60
    while "Not Found: /api/v1/no-such-route/" not in dev_server["log"].read_text():
        assert time.monotonic() < deadline, dev_server["log"].read_text()
        time.sleep(0.2)
    log = dev_server["log"].read_text()
    # migrate, seed_database and shell say nothing of it; the server says it once.
    assert log.count("backends: database=") == 1, log
    assert log.count("Not Found: /api/v1/no-such-route/") == 1, log
    assert "No hostname was supplied" not in log
    worker_log = (dev_server["project"] / "var" / "worker.log").read_text()
    assert "No hostname was supplied" not in worker_log, worker_log


def test_dev_refuses_an_oversized_websocket_frame_from_its_header(dev_server):
    """As production does: a frame announcing 15 MB is refused (1009) before it is read;
    uvicorn's own default (16 MiB) waited for all of it."""
    from types import SimpleNamespace

    from tests.e2e.test_websocket_guards import BIG, masked_header, raw_upgrade, server_close_code

    sock = raw_upgrade(SimpleNamespace(base_url=f"http://127.0.0.1:{dev_server['port']}"))
    sock.sendall(masked_header(BIG) + b"x" * 16)
    assert server_close_code(sock) == 1009
    sock.close()
