"""Real processes for drills: a private Redis, web servers and Celery workers on the test
database, all reachable only on 127.0.0.1 and all torn down by the fixtures."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from tests.e2e.conftest import ROOT, _database_url, _free_port, _stop, log_tail, spawn, wait_live

ENCRYPTION_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
SECRET_KEY = secrets.token_urlsafe(64)


@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log_path: Path
    port: int | None = None
    extra: dict = field(default_factory=dict)
    scheme: str = "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log_path, lines)

    def kill(self, sig=signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def stop(self) -> None:
        _stop(self.process)


class Redis:
    """A redis-server of the drill's own, so stopping it harms nobody else."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Listening within milliseconds here; up to 60 s on a busy machine (returns at once).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.1)
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> Redis:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


class Postgres:
    """A PostgreSQL cluster of the drill's own (``initdb`` into a temporary folder, trust
    authentication, 127.0.0.1 on a free port), so stopping it harms nobody else. As root,
    its binaries run as the ``postgres`` user, which owns the folder."""

    def __init__(self) -> None:
        binaries = sorted(Path(p).parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not binaries:
            pytest.fail("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) are missing")
        self.bin = max(binaries, key=lambda path: int(path.parent.name))
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="pms-drill-pg-"))
        self.data = self.folder / "data"
        self.log_path = self.folder / "postgres.log"
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, timeout: float = 90) -> None:
        done = subprocess.run(
            [*self.run_as, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"{program} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--no-sync")  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            # A drill's data is thrown away: no fsync (a crash of the machine is no drill).
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        with contextlib.suppress(BaseException):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def base_env(redis_url: str | None, **overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PMS_", "DATABASE_", "REDIS_"))
    }
    env.update(
        {
            "DATABASE_URL": _database_url(),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "PMS_ENCRYPTION_KEYS": os.environ.get("PMS_ENCRYPTION_KEYS") or ENCRYPTION_KEY,
            # The test process's own key: both sides seal and verify one chain.
            "PMS_AUDIT_CHAIN_KEY": settings.PMS_AUDIT_CHAIN_KEY,
            "PMS_SKIP_INSTALL": "1",
            "PMS_SKIP_MIGRATE": "1",
            "PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            "PMS_RATE_LIMITS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "DATABASE_POOL_MAX_SIZE": "4",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(overrides)
    return env


def make_tls_cert(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (``manage.py make_tls_cert``)."""
    subprocess.run(
        [sys.executable, "manage.py", "make_tls_cert", "--out", str(workdir)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "DJANGO_DEBUG": "true"},
        timeout=60,
    )
    return workdir / "cert.pem", workdir / "key.pem"


def start_server(
    workdir: Path,
    env: dict[str, str],
    name: str = "web",
    tls: tuple[Path, Path] | None = None,
    http_workers: int = 1,
) -> Proc:
    """``scripts/start.sh`` on a free port; HTTPS/WSS when ``tls`` is (cert, key)."""
    port = _free_port()
    log_path = workdir / f"{name}.log"
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(http_workers)}
    if tls:
        env.update(TLS_CERT_FILE=str(tls[0]), TLS_KEY_FILE=str(tls[1]))
    process = spawn([str(ROOT / "scripts" / "start.sh")], env, log_path)
    proc = Proc(name, process, log_path, port, scheme="https" if tls else "http")
    verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True
    wait_live(proc.base_url, process, log_path, verify=verify)
    return proc


def start_worker(
    workdir: Path, env: dict[str, str], name: str = "worker", *args: str, beat: bool = True
) -> Proc:
    log_path = workdir / f"{name}.log"
    command = [str(ROOT / "scripts" / "worker.sh"), "-n", f"{name}@%h", *args]
    if beat:
        command.append("--beat")
        env = {**env, "PMS_BEAT_SCHEDULE_FILE": str(workdir / f"{name}-beat-schedule")}
    worker_env = {**env, "WORKER_CONCURRENCY": env.get("WORKER_CONCURRENCY", "2")}
    process = spawn(command, {**worker_env, "LOG_LEVEL": "info"}, log_path)
    proc = Proc(name, process, log_path)
    deadline = time.monotonic() + 60
    while " ready." not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            pytest.fail(f"{name} did not become ready:\n{proc.log_tail()}")
        time.sleep(0.2)
    return proc


@contextlib.contextmanager
def started_together(*starters: Callable[[], Proc]):
    """Start servers and workers at the same time (each ``start_*`` mostly waits) and
    yield them; stop them all at the end, or as soon as one of them fails to start."""
    with ThreadPoolExecutor(len(starters)) as pool:
        futures = [pool.submit(start) for start in starters]
    started = [f.result() for f in futures if f.exception() is None]
    try:
        for future in futures:
            if future.exception() is not None:
                raise future.exception()
        yield started
    finally:
        for proc in started:
            proc.stop()


def wait_until(predicate, timeout: float, message: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(message)
