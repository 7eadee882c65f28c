"""End-to-end fixtures: the production web process (``scripts/start.sh``) as a real
subprocess, connected to the test database, reached over real HTTP."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings

from tests.conftest import _need

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60
STOP_TIMEOUT = 30


@dataclass
class ServerProcess:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 80) -> str:
        return log_tail(self.log_path, lines)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Api-Key {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)


def _database_url() -> str:
    """The URL of the database this test session uses (the test database, once set up)."""
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "", safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT)
    # Whatever is left of the process group (workers of a master that died).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start a project script in a process group of its own, its output in ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_live(
    base_url: str,
    process: subprocess.Popen,
    log_path: Path,
    *,
    timeout: float = START_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Wait until the server answers ``/health/live``; fail the test with its log if it
    exits or stays silent (and stop it)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log_tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health/live", timeout=1, verify=verify).status_code == 200:
                return
        if time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"no answer on /health/live within {timeout:.0f} s:\n{log_tail(log_path)}")
        time.sleep(0.2)


def log_tail(log_path: Path, lines: int = 80) -> str:
    """The last lines of a process's log, for a failure message."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(the log is empty)"


@pytest.fixture(scope="session", autouse=True)
def _static_files_collected():
    """Collect static files once, before any server process starts (they would race)."""
    if not (ROOT / "staticfiles" / "staticfiles.json").exists():
        subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "python"),
                "manage.py",
                "collectstatic",
                "--noinput",
                "-v0",
            ],
            cwd=ROOT,
            check=True,
            env={
                **os.environ,
                "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
                "PMS_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
                "PMS_AUDIT_CHAIN_KEY": secrets.token_urlsafe(32),
            },
        )


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Environment variables a test module gives its ``server_process`` (override it)."""
    return {}


@pytest.fixture(scope="module")
def server_process(django_db_setup, tmp_path_factory, server_env):
    """``scripts/start.sh`` in production mode on a free port, on the test database, with
    the module's ``server_env`` on top.

    Tests that put data in front of it must use ``transactional_db`` (the server's own
    connections only see committed rows). Needs PostgreSQL: SQLite's test database lives
    in this process's memory.
    """
    _need("PostgreSQL", settings.DATABASE_BACKEND == "postgresql")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PMS_", "DATABASE_", "REDIS_"))
    }
    env.update(
        {
            "DATABASE_URL": _database_url(),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "PMS_ENCRYPTION_KEYS": os.environ.get("PMS_ENCRYPTION_KEYS")
            or base64.b64encode(secrets.token_bytes(32)).decode(),
            "PMS_AUDIT_CHAIN_KEY": settings.PMS_AUDIT_CHAIN_KEY,
            "PMS_SKIP_INSTALL": "1",
            "PMS_SKIP_MIGRATE": "1",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(server_env)
    process = spawn([str(ROOT / "scripts" / "start.sh")], env, log_path)
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_live(server.base_url, process, log_path)
        yield server
    finally:
        _stop(process)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server's log to the report of a failing test that used the server."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "server_process" in getattr(item, "funcargs", {}):
        server = item.funcargs["server_process"]
        report.sections.append(("server log (tail)", server.log_tail()))
