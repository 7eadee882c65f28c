"""scripts/start.sh with TLS: TLS 1.3 is spoken, a TLS 1.2-only client is refused."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    work = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [sys.executable, "manage.py", "make_tls_cert", "--out", str(work)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "DJANGO_DEBUG": "true"},
    )
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "tls-test-" + "x9" * 30,
        "PMS_ENCRYPTION_KEYS": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "PMS_AUDIT_CHAIN_KEY": "tls-test-audit-chain-key-" + "k7" * 8,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "1",
        "TLS_CERT_FILE": str(work / "cert.pem"),
        "TLS_KEY_FILE": str(work / "key.pem"),
        "PMS_SKIP_INSTALL": "1",
    }
    env.pop("REDIS_URL", None)
    log = open(work / "server.log", "w+")  # noqa: SIM115 -- closed in teardown
    process = subprocess.Popen(
        ["scripts/start.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.3)
    else:
        process.kill()
    if process.poll() is not None:
        log.seek(0)
        pytest.fail(f"server did not start:\n{log.read()}")
    yield port, work / "cert.pem"
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _handshake(port: int, cafile: Path, version: ssl.TLSVersion) -> str:
    context = ssl.create_default_context(cafile=str(cafile))
    context.minimum_version = context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = tls.recv(4096).decode(errors="replace")
        return f"{tls.version()} {reply.splitlines()[0]}"


def test_tls13_client_is_served(tls_server):
    port, cert = tls_server
    assert _handshake(port, cert, ssl.TLSVersion.TLSv1_3) == "TLSv1.3 HTTP/1.1 200 OK"


def test_tls12_only_client_is_refused(tls_server):
    port, cert = tls_server
    with pytest.raises(ssl.SSLError):
        _handshake(port, cert, ssl.TLSVersion.TLSv1_2)
