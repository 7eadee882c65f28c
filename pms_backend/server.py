"""The production ASGI server (uvicorn), configured from the environment.

``python -m pms_backend.server`` serves HTTP and websockets on ``$HOST:$PORT`` with
``$WEB_CONCURRENCY`` processes; HTTPS/WSS with TLS 1.3 as the minimum when
``TLS_CERT_FILE`` and ``TLS_KEY_FILE`` are set. Forwarded headers are trusted only from
the proxies listed in ``FORWARDED_ALLOW_IPS``.

The processes share a folder for their Prometheus samples (``PROMETHEUS_MULTIPROC_DIR``):
``$PMS_METRICS_DIR/web-$PORT`` (default ``var/metrics``), emptied when the server starts
and removed when it stops, so ``/metrics`` sums exactly this deployment's processes.
"""

from __future__ import annotations

import os
import shutil
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn

BASE_DIR = Path(__file__).resolve().parent.parent


def tls13_context(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """Return uvicorn's TLS context with TLS 1.3 as the lowest version it will speak."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def options_from_env(env: dict[str, str]) -> dict:
    """Return uvicorn.run's keyword arguments for this environment; exit on bad values."""
    try:
        port = int(env.get("PORT", "8000"))
        workers = int(env.get("WEB_CONCURRENCY", "2"))
    except ValueError:
        sys.exit("error: PORT and WEB_CONCURRENCY must be whole numbers")
    if not (0 < port < 65536 and 0 < workers <= 64):
        sys.exit("error: PORT must be 1-65535 and WEB_CONCURRENCY 1-64")
    options = {
        "host": env.get("HOST", "0.0.0.0"),  # noqa: S104 -- a server listens on all interfaces
        "port": port,
        "workers": workers,
        "log_level": env.get("UVICORN_LOG_LEVEL", "warning"),
        "access_log": env.get("ACCESS_LOG", "0") == "1",
        "timeout_graceful_shutdown": 20,
        "proxy_headers": bool(env.get("FORWARDED_ALLOW_IPS")),
        "forwarded_allow_ips": env.get("FORWARDED_ALLOW_IPS") or None,
        # Events are small JSON frames sent to every subscriber: compressing each copy
        # cost more server CPU (5% of the websocket fan-out) than the bytes were worth.
        "ws_per_message_deflate": False,
        # Refuse an oversized message from its frame header, before reading it.
        "ws_max_size": _django_setting("WEBSOCKET_MAX_MESSAGE_BYTES"),
    }
    cert, key = env.get("TLS_CERT_FILE", ""), env.get("TLS_KEY_FILE", "")
    if cert or key:
        for name, path in (("TLS_CERT_FILE", cert), ("TLS_KEY_FILE", key)):
            if not path or not os.access(path, os.R_OK):
                sys.exit(f"error: {name} must name a readable file (got {path!r})")
        options.update(ssl_certfile=cert, ssl_keyfile=key, ssl_context_factory=tls13_context)
    return options


def _django_setting(name: str):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")
    from django.conf import settings

    return getattr(settings, name)


def prepare_metrics_dir(env: dict[str, str], port: int) -> Path:
    """Return an empty folder for this server's metric files (one per port).

    Folders that servers killed without a clean exit left behind are removed too.
    """
    root = Path(env.get("PMS_METRICS_DIR") or BASE_DIR / "var" / "metrics")
    for other in root.glob("web-*/server.pid"):
        if not _running(other.read_text().strip()):
            shutil.rmtree(other.parent, ignore_errors=True)
    path = root / f"web-{port}"
    # Samples left by a previous run (its pids are gone) would be summed into ours.
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    (path / "server.pid").write_text(str(os.getpid()))
    return path


def _running(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def main() -> None:
    options = options_from_env(dict(os.environ))
    metrics_dir = prepare_metrics_dir(dict(os.environ), options["port"])
    # Before anything imports prometheus_client: the worker processes inherit it.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    scheme = "https" if "ssl_certfile" in options else "http"
    print(
        f"==> serving {scheme}://{options['host']}:{options['port']} with "
        f"{options['workers']} process(es)",
        file=sys.stderr,
    )
    try:
        uvicorn.run("pms_backend.asgi:application", **options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
