"""The README's screenshots: the admin and its dashboard with a month of a demo shop in them.

    .venv/bin/python scripts/readme_screenshots.py [--out docs/images]

Everything happens in a temporary folder and is thrown away afterwards: an SQLite
database (no PostgreSQL or Redis needed) holding the demo shop of ``scripts/dev.sh``
(``seed_database``, seed 1: the catalog, stock for its published products, 150 orders
placed and moved through the order services over the last 30 days, and the metric
history of those days). Then ``scripts/start.sh`` (local
development settings, one process) serves it on a free port of 127.0.0.1 and Debian's
Chromium, driven by Playwright, logs in and takes screenshots 1280 pixels wide: the
product page whole, the dashboard and the order list as a 1280x800 window. PNGs are
optimised with ``optipng`` when it is installed.

The demo is seeded: the same commit gives the same pictures (but for dates).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CHROMIUM = "/usr/bin/chromium"
USERNAME, PASSWORD = "admin", secrets.token_urlsafe(16)
VIEWPORT = {"width": 1280, "height": 800}


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def environment(workdir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PMS_", "DATABASE_", "REDIS_", "CELERY_"))
    }
    env.update(
        {
            "DJANGO_DEBUG": "true",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "PMS_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "CELERY_BROKER_DIR": str(workdir / "broker"),
            "PMS_METRICS_DIR": str(workdir / "metrics"),
            "PMS_SKIP_INSTALL": "1",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def manage(env: dict[str, str], *argv: str) -> None:
    result = subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(argv)} failed:\n{result.stdout}{result.stderr}")


def make_admin() -> None:
    """The superuser the browser logs in as (runs with Django set up)."""
    import django

    django.setup()
    # Django's models load only after setup().
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log_file = open(workdir / "server.log", "wb")  # noqa: SIM115 (the process keeps it)
    process = subprocess.Popen(  # noqa: S603
        [str(ROOT / "scripts" / "start.sh")],
        cwd=ROOT,
        env={**env, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited:\n{(workdir / 'server.log').read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(base + "/health/live", timeout=1):  # noqa: S310
            return process, base
        time.sleep(0.2)
    sys.exit("the server did not answer within 60 s")


def stop_server(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def take_screenshots(base: str, out: Path, product_id: int) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = [
        # (file, page, whole page or the 1280x800 viewport)
        ("dashboard.png", "/admin/", False),
        ("product.png", f"/admin/catalog/product/{product_id}/change/", True),
        ("orders.png", "/admin/orders/order/", False),
    ]
    taken = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        page = context.new_page()
        page.goto(base + "/admin/login/")
        page.fill("#id_username", USERNAME)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#user-tools")
        # The navigation sidebar folded away (the admin remembers it): more room for content.
        page.goto(base + "/admin/orders/order/")
        page.click("#toggle-nav-sidebar")
        for name, path, full_page in shots:
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            target = out / name
            page.screenshot(path=str(target), full_page=full_page)
            taken.append(target)
            log(f"{shown(target)}: {path}")
        browser.close()
    return taken


def optimise(paths: list[Path]) -> None:
    optipng = shutil.which("optipng")
    if not optipng:
        log("optipng not installed: PNGs left as Chromium wrote them")
        return
    for path in paths:
        subprocess.run([optipng, "-quiet", "-o5", "-strip", "all", str(path)], check=True)  # noqa: S603


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="folder for PNGs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pms-screenshots-"))
    env = environment(workdir)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")
    sys.path.insert(0, str(ROOT))
    server = None
    try:
        log(f"demo shop in {workdir}")
        manage(env, "migrate", "--noinput", "-v0")
        # The demo shop of scripts/dev.sh: stock, a month of orders, the metric history.
        manage(env, "seed_database", "--products", "200", "--seed", "1", "--no-progress")
        make_admin()
        from catalog.models import Product

        product = (
            Product.objects.filter(status=Product.Status.PUBLISHED, stock__on_hand__gt=20)
            .order_by("pk")
            .first()
        )
        server, base = start_server(env, workdir)
        shots = take_screenshots(base, out, product.pk)
        optimise(shots)
        for path in shots:
            log(f"{shown(path)}: {path.stat().st_size / 1024:.0f} KB")
    finally:
        if server is not None:
            stop_server(server)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
