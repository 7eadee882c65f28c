"""The Celery worker's CPU time per delivered webhook, and the commit → receipt latency.

    DATABASE_URL=postgres://…/pms_scratch REDIS_URL=redis://127.0.0.1:6379/N \\
        .venv/bin/python bench/webhook_worker_cpu.py [--events 2000] [--rate 50]

Not a scripts/bench.sh benchmark: a probe for one piece (webhooks/, pms_backend/events/)
that measures CPU time, not wall time, so a busy shared machine moves it little. It
migrates the database it is given (which it takes over: do not point it at data you
keep), starts ``scripts/worker.sh --beat`` against it in production mode, subscribes a
keep-alive receiver in this process (the events benchmark's) to ``stock.updated``, then
records stock receipts through the inventory service at ``--rate`` per second, one
transaction each (one event, one dispatch task, as an API request makes). It waits for
every webhook and prints the worker's CPU time (every process of its group: main,
pool, beat) per event, and the latency distribution the receiver saw.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from harness.events import WebhookReceiver  # noqa: E402
from harness.stats import percentile  # noqa: E402

# The settings are read at django.setup(): production mode, as the benchmarks run.
ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "PMS_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
    "PMS_AUDIT_CHAIN_KEY": secrets.token_urlsafe(32),
    "PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "LOG_LEVEL": "WARNING",
}


def group_cpu_seconds(pgid: int) -> float:
    """utime + stime of every live process in the process group ``pgid``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def setup(products: int, url: str) -> list[int]:
    """Migrate, seed ``products`` products, subscribe ``url``; return the product ids."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from audit.actors import Actor
    from catalog.models import Product
    from pms_backend.events.models import Event
    from webhooks import services as webhooks
    from webhooks.models import WebhookDelivery, WebhookEndpoint

    WebhookDelivery.objects.all().delete()
    WebhookEndpoint.objects.all().delete()
    actor = Actor.system("bench")
    have = list(Product.objects.order_by("pk").values_list("pk", flat=True)[:products])
    if len(have) < products:
        from catalog import services as catalog

        for n in range(len(have), products):
            sku = f"CPU-{n:05d}-{secrets.token_hex(3)}"
            product = catalog.product_create(actor=actor, sku=sku, name=sku, price=1)
            have.append(product.pk)
    Event.objects.filter(dispatched_at__isnull=True).update(dispatched_at=django_now())
    webhooks.endpoint_create(actor=actor, url=url, event_types=["stock.updated"])
    return have


def django_now():
    from django.utils import timezone

    return timezone.now()


def emit(products: list[int], count: int, rate: float, offset: int = 0) -> float:
    """Record ``count`` receipts at ``rate`` per second (open loop); return the seconds."""
    from audit.actors import Actor
    from inventory.services import stock_record_movement

    actor = Actor.system("bench")
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stock_record_movement(
            actor=actor,
            product_id=products[(offset + i) % len(products)],
            kind="receipt",
            quantity=1,
            reason="",
        )
    return time.monotonic() - start


def wait_for(receiver: WebhookReceiver, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while receiver.count < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--profile", help="py-spy binary: record the worker's processes (collapsed stacks)"
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        parser.error("set DATABASE_URL and REDIS_URL (a scratch database and Redis db)")
    os.environ.update(ENV)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")
    receiver = WebhookReceiver()
    products = setup(args.products, receiver.url)
    tmp = Path(tempfile.mkdtemp(prefix="webhook-cpu-"))
    log = open(tmp / "worker.log", "wb")  # noqa: SIM115 (closed at the end)
    worker = subprocess.Popen(  # noqa: S603
        [str(ROOT / "scripts" / "worker.sh"), "--beat"],
        cwd=ROOT,
        env={
            **os.environ,
            "PMS_SKIP_INSTALL": "1",
            "WORKER_CONCURRENCY": str(args.concurrency),
            "PMS_BEAT_SCHEDULE_FILE": str(tmp / "celerybeat-schedule"),
            "PMS_METRICS_DIR": str(tmp / "metrics"),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    spies: list[subprocess.Popen] = []
    try:
        while b"[queues]" not in (tmp / "worker.log").read_bytes():
            if worker.poll() is not None:
                print((tmp / "worker.log").read_text()[-3000:], file=sys.stderr)
                return 1
            time.sleep(0.2)
        emit(products, 40, 20)
        if not wait_for(receiver, 40, 60):
            print(f"warm-up: {receiver.count}/40 arrived", file=sys.stderr)
            return 1
        time.sleep(2)
        if args.profile:
            spies = _spy(args.profile, worker.pid, tmp)
        base = receiver.count
        load = os.getloadavg()
        cpu = group_cpu_seconds(worker.pid)
        started = time.time()
        seconds = emit(products, args.events, args.rate, offset=40)
        ended = time.time()
        arrived = wait_for(receiver, base + args.events, 120)
        used = group_cpu_seconds(worker.pid) - cpu
        lat = sorted(receiver.window(started, ended + 1))
        print(
            f"{args.events} events at {args.events / seconds:.1f}/s "
            f"(concurrency {args.concurrency}); all arrived: {arrived} "
            f"({receiver.count - base}), duplicates {receiver.duplicates}\n"
            f"worker CPU {used:.2f} s = {used * 1000 / args.events:.2f} ms per event\n"
            f"latency ms: p50 {percentile(lat, 50):.0f}, p90 {percentile(lat, 90):.0f}, "
            f"p99 {percentile(lat, 99):.0f}, max {lat[-1] if lat else float('nan'):.0f}\n"
            f"load average before {load[0]:.2f} {load[1]:.2f}, after "
            f"{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; worker log {tmp / 'worker.log'}"
        )
        return 0 if arrived else 1
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(60)
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        log.close()
        receiver.close()


def _spy(py_spy: str, pgid: int, tmp: Path) -> list[subprocess.Popen]:
    """Record every process of the worker's group with py-spy (collapsed stacks) until
    stopped."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        text = stat.read_text()
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    spies = []
    for pid in pids:
        out = tmp / f"profile-{pid}.txt"
        spies.append(
            subprocess.Popen(  # noqa: S603
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "-o",
                    str(out),
                    "--format",
                    "raw",
                    "--rate",
                    "100",
                    "--nonblocking",
                    "--gil",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        print(f"py-spy: {out}", file=sys.stderr)
    time.sleep(1)
    return spies


if __name__ == "__main__":
    sys.exit(main())
