"""Clients of a running stack (tests/e2e/processes.py), acting as its users do: an API
client, a staff member in the admin, a websocket listener, an operator's ``manage.py``
commands and a webhook receiver's signature check."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from pms_backend.events.client import events as event_stream
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER
from tests.e2e.conftest import ROOT
from tests.e2e.processes import wait_until

CSRF_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def tls_verify(cert: Path | None) -> ssl.SSLContext | bool:
    """What httpx should trust: the stack's self-signed certificate, if it has one."""
    return ssl.create_default_context(cafile=str(cert)) if cert else True


def api(base_url: str, key: str, cert: Path | None = None) -> httpx.Client:
    """An API client holding ``key`` (``Authorization: Api-Key``). Close it when done: over
    TLS an idle keep-alive connection holds the server's graceful shutdown for its full
    20 s (the server waits for a TLS close the idle client never sends)."""
    return httpx.Client(
        base_url=f"{base_url}/api/v1",
        headers={"Authorization": f"Api-Key {key}"},
        verify=tls_verify(cert),
        timeout=30,
    )


def ws_url(base_url: str) -> str:
    """The events websocket of a server (``wss://`` when it speaks HTTPS)."""
    return base_url.replace("http", "ws", 1) + "/ws/v1/events/"


def all_pages(client: httpx.Client, path: str) -> list[dict]:
    """Every result of a paginated list, following ``next``."""
    results: list[dict] = []
    while path:
        listing = client.get(path)
        assert listing.status_code == 200, listing.text
        results += listing.json()["results"]
        path = listing.json()["next"]
    return results


def order_lines(*lines: tuple[int, int]) -> dict:
    """An order body for ``(product_id, quantity)`` pairs."""
    return {
        "items": [{"product": pid, "quantity": qty} for pid, qty in lines],
        "customer": ORDER_CUSTOMER,
        "shipping_address": ORDER_ADDRESS,
    }


def place_order(
    shop: httpx.Client, *lines: tuple[int, int], idempotency_key: str | None = None
) -> httpx.Response:
    return shop.post(
        "/orders/",
        json=order_lines(*lines),
        headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )


def create_endpoint(admin: httpx.Client, url: str, **fields) -> tuple[str, str]:
    """Register a webhook endpoint; return its id and its secret (shown once)."""
    response = admin.post("/webhooks/endpoints/", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["secret"]


def verified_envelopes(secret: str, received) -> list[dict]:
    """Every received request's body, after a Standard Webhooks signature check."""
    hook = Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in received]


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``manage.py`` as an operator runs it, with the stack's environment."""
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def generate_api_key(env: dict[str, str], name: str, scopes: str) -> str:
    """``manage.py generate_api_key``: the key is alone on the last line of stdout."""
    made = manage(env, "generate_api_key", "--name", name, "--scopes", scopes)
    assert made.returncode == 0, made.stderr
    return made.stdout.splitlines()[-1]


class AdminSession:
    """A staff member in the Django admin: a cookie session, forms posted with CSRF."""

    def __init__(self, base_url: str, cert: Path | None = None) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, verify=tls_verify(cert), timeout=30)

    def post_form(self, path: str, data: dict[str, str]) -> httpx.Response:
        """Open the form's page, then send it as the browser would (token and Referer)."""
        page = self.http.get(path)
        assert page.status_code == 200, page.text[:2000]
        return self.http.post(
            path,
            data={"csrfmiddlewaretoken": CSRF_TOKEN.search(page.text)[1], **data},
            headers={"Referer": f"{self.base_url}{path}"},
        )

    def login(self, username: str, password: str) -> None:
        response = self.post_form(
            "/admin/login/?next=/admin/", {"username": username, "password": password}
        )
        assert response.status_code == 302, response.text[:2000]

    def close(self) -> None:
        self.http.close()


class EventListener:
    """A websocket client (``pms_backend.events.client``) in a thread of its own,
    collecting every event it hears until closed (after those since ``since``, replayed)."""

    def __init__(
        self,
        url: str,
        key: str,
        topics: list[str],
        cert: Path | None = None,
        since: str | None = None,
    ) -> None:
        self.url, self.key, self.topics, self.since = url, key, topics, since
        self.cafile = str(cert) if cert else None
        self.events: list[dict] = []
        self.error: BaseException | None = None
        self._subscribed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, timeout: float = 30) -> EventListener:
        self._thread.start()
        if not self._subscribed.wait(timeout) or self.error is not None:
            self.close()
            pytest.fail(f"the websocket to {self.url} did not subscribe: {self.error!r}")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self._listen())
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # reported by start() and wait_for()
            self.error = exc
        finally:
            self._subscribed.set()
            self._loop.close()

    async def _listen(self) -> None:
        ready = asyncio.Event()
        watcher = asyncio.create_task(ready.wait())
        watcher.add_done_callback(lambda _: self._subscribed.set())
        stream = event_stream(
            self.url, self.key, self.topics, cafile=self.cafile, ready=ready, since=self.since
        )
        async for event in stream:
            self.events.append(event)

    def ids(self, *types: str) -> set[str]:
        return {e["id"] for e in list(self.events) if not types or e["type"] in types}

    def wait_for(self, predicate: Callable[[list[dict]], object], timeout: float, what: str):
        def check():
            if self.error is not None:
                pytest.fail(f"the websocket to {self.url} failed: {self.error!r}")
            return predicate(list(self.events))

        return wait_until(check, timeout, f"{self.url}: {what}")

    def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(15)
