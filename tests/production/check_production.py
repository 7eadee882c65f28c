"""The production install checked from outside (scripts/ci/production_check.sh runs it).

Only the public HTTP and websocket API and the worker's log are used, so the check holds
whatever serves behind ``$PORT``. Prints a PASS or FAIL line per check; exits 1 on any
FAIL. Not a pytest module (no ``test_`` prefix): it needs the stage's running processes.

    python -m tests.production.check_production --base-url http://127.0.0.1:8000 \\
        --admin-key pms_… --shop-key pms_… --worker-log /tmp/…/worker.log
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import websockets
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from pms_backend.plurals import counted
from tests.receiver import Receiver

EVENT_TIMEOUT = 30.0
# orders.expire_reservations runs every 60 s from beat; its first run is due 60 s after
# beat started, which was a few seconds before this checker.
BEAT_TIMEOUT = 90.0


class Results:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        line = f"{'PASS' if ok else 'FAIL'}: {what}"
        if detail:
            line += f" ({detail})"
        print(line, flush=True)
        self.failed += not ok
        return ok


class Subscriber:
    """A websocket client in a thread of its own, as docs/api.md describes one: auth
    message, subscribe, then event frames."""

    def __init__(self, url: str, key: str, topics: list[str]) -> None:
        self.url, self.key, self.topics = url, key, topics
        self.events: list[dict] = []
        self.ready = threading.Event()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> Subscriber:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    async def _run(self) -> None:
        try:
            async with websockets.connect(self.url, open_timeout=10) as socket:
                await socket.send(json.dumps({"type": "auth", "key": self.key}))
                reply = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if reply.get("type") != "authenticated":
                    raise RuntimeError(f"auth answered {reply}")
                await socket.send(json.dumps({"type": "subscribe", "topics": self.topics}))
                reply = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if reply.get("type") != "subscribed":
                    raise RuntimeError(f"subscribe answered {reply}")
                self.ready.set()
                while not self._stop.is_set():
                    try:
                        frame = await asyncio.wait_for(socket.recv(), 0.5)
                    except TimeoutError:
                        continue
                    self.events.append(json.loads(frame))
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()


def wait_for(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def check_ready(results: Results, http: httpx.Client) -> None:
    try:
        response = http.get("/health/ready")
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        results.check(False, "/health/ready answers", f"{type(exc).__name__}: {exc}")
        return
    checks = body.get("checks", {})
    named = all(
        checks.get(name, {}).get("status") == "ok" for name in ("database", "cache", "broker")
    )
    results.check(
        response.status_code == 200 and named,
        "/health/ready 200 with database, cache and broker ok",
        f"status {response.status_code}: {json.dumps(checks)}",
    )


def make_product(admin: httpx.Client) -> dict:
    """A published product with 10 in stock, through the API."""
    tag = uuid.uuid4().hex[:8]
    category = admin.post("/api/v1/categories/", json={"name": f"CI {tag}"})
    category.raise_for_status()
    product = admin.post(
        "/api/v1/products/",
        json={
            "sku": f"CI-{tag}",
            "name": "Production check lamp",
            "price": "19.90",
            "category": category.json()["id"],
        },
    )
    product.raise_for_status()
    product_id = product.json()["id"]
    admin.post(f"/api/v1/products/{product_id}/publish/").raise_for_status()
    admin.post(
        "/api/v1/inventory/movements/",
        json={"product": product_id, "quantity": 10, "kind": "receipt", "reason": "ci"},
    ).raise_for_status()
    return admin.get(f"/api/v1/products/{product_id}/").json()


def place_order(shop: httpx.Client, product_id: int) -> httpx.Response:
    return shop.post(
        "/api/v1/orders/",
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={
            "items": [{"product": product_id, "quantity": 2}],
            "customer": {"email": "ci@example.com", "name": "Production Check"},
            "shipping_address": {
                "line1": "1 Release Road",
                "city": "London",
                "postal_code": "N1",
                "country": "GB",
            },
        },
    )


def check_event_flow(results: Results, base_url: str, admin_key: str, shop_key: str) -> None:
    auth = {"Authorization": f"Api-Key {admin_key}"}
    admin = httpx.Client(base_url=base_url, headers=auth, timeout=15)
    shop = httpx.Client(
        base_url=base_url, headers={"Authorization": f"Api-Key {shop_key}"}, timeout=15
    )
    receiver = Receiver().start()
    ws_url = re.sub(r"^http", "ws", base_url) + "/ws/v1/events/"
    subscriber = Subscriber(ws_url, admin_key, ["orders"]).start()
    try:
        endpoint = admin.post(
            "/api/v1/webhooks/endpoints/",
            json={"url": receiver.url, "event_types": ["order.created"]},
        )
        if not results.check(
            endpoint.status_code == 201,
            "webhook endpoint registered through the API",
            f"status {endpoint.status_code}",
        ):
            return
        secret = endpoint.json()["secret"]
        subscriber.ready.wait(15)
        results.check(
            subscriber.ready.is_set() and subscriber.error is None,
            "websocket subscriber authenticated and subscribed to orders",
            subscriber.error or ws_url,
        )
        try:
            product = make_product(admin)
        except httpx.HTTPError as exc:
            results.check(False, "published product with stock made through the API", str(exc))
            return
        results.check(
            product.get("status") == "published",
            "published product with stock made through the API",
            f"product {product.get('id')}",
        )
        order = place_order(shop, product["id"])
        if not results.check(
            order.status_code == 201, "order placed through the API", f"status {order.status_code}"
        ):
            return
        order_id = order.json()["id"]

        unverified: list[str] = []

        def delivered():
            unverified.clear()
            for request in receiver.received:
                try:
                    envelope = Webhook(secret).verify(request.body, request.headers)
                except WebhookVerificationError as exc:
                    unverified.append(str(exc))
                    continue
                if envelope["type"] == "order.created" and envelope["data"]["id"] == order_id:
                    return envelope
            return None

        started = time.monotonic()
        envelope = wait_for(delivered, EVENT_TIMEOUT)
        results.check(
            envelope is not None,
            "order.created reached the webhook receiver with a valid signature",
            f"{time.monotonic() - started:.1f} s"
            if envelope
            else f"{counted(len(receiver.received), 'request')} received in {EVENT_TIMEOUT:.0f} s, "
            f"signature refused: {unverified}",
        )

        def pushed():
            return any(
                e.get("type") == "order.created" and e.get("data", {}).get("id") == order_id
                for e in subscriber.events
            )

        results.check(
            bool(wait_for(pushed, EVENT_TIMEOUT)),
            "order.created reached the websocket subscriber",
            subscriber.error or f"{counted(len(subscriber.events), 'event')} seen",
        )
    finally:
        subscriber.stop()
        receiver.stop()


def check_beat(results: Results, worker_log: Path, started: float) -> None:
    sent = re.compile(r"Sending due task \S+ \(orders\.expire_reservations\)")
    done = re.compile(r"Task orders\.expire_reservations\[[^\]]+\] succeeded")

    def fired() -> bool:
        try:
            text = worker_log.read_text(errors="replace")
        except OSError:
            return False
        return bool(sent.search(text) and done.search(text))

    remaining = max(0.0, BEAT_TIMEOUT - (time.monotonic() - started))
    results.check(
        bool(wait_for(fired, remaining, interval=1.0)),
        "beat sent orders.expire_reservations and the worker ran it",
        f"within {BEAT_TIMEOUT:.0f} s of the checker's start",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--shop-key", required=True)
    parser.add_argument("--worker-log", required=True, type=Path)
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = Results()
    with httpx.Client(base_url=args.base_url, timeout=15) as http:
        check_ready(results, http)
    check_event_flow(results, args.base_url, args.admin_key, args.shop_key)
    check_beat(results, args.worker_log, started)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
