"""What every part of the benchmarks uses: paths, the error, logging, small HTTP helpers."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "bench" / "results"
TMP_DIR = ROOT / "bench" / "tmp"
PYTHON = str(ROOT / ".venv" / "bin" / "python")


class BenchError(RuntimeError):
    """A benchmark could not run (as opposed to: it ran and missed a target)."""


def counted(n: int, singular: str, plural: str = "") -> str:
    """Return ``n`` with its noun: "1 worker process", "2 worker processes" (the harness
    runs without the project, so not pms_backend.plurals)."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10):
    """Return ``(status, headers, body bytes)``."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (127.0.0.1 only)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def post_expecting(url: str, key: str, payload: dict, *, expect: int, **headers: str) -> bytes:
    """POST ``payload`` as JSON with an API key (and ``headers``, ``Idempotency_Key`` for
    ``Idempotency-Key``); return the body, or raise ``BenchError`` naming the answer when
    its status is not ``expect``."""
    request = urllib.request.Request(  # noqa: S310 (127.0.0.1 only)
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={
            "Authorization": f"Api-Key {key}",
            "Content-Type": "application/json",
            **{name.replace("_", "-"): value for name, value in headers.items()},
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    if status != expect:
        raise BenchError(f"POST {url} answered {status}, expected {expect}: {body[:500]!r}")
    return body


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
