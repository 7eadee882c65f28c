"""Events for the event-delivery benchmarks: stock receipts posted through the API on a
clock (``generate_events``), a webhook endpoint and the receiver it points at."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import urllib.request
from typing import Any

from harness.common import BenchError
from harness.servers import Server
from harness.stats import percentile


def event_time(envelope: dict[str, Any]) -> float | None:
    """The Event row's created_at (set in the writing transaction, just before commit)."""
    stamp = envelope.get("timestamp")
    if not isinstance(stamp, str):
        return None
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 that time-stamps each webhook on arrival."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, float]] = []  # (event created_at, received at)
        self.ids: set[str] = set()
        self.duplicates = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffered: the reply leaves in one segment when the handler returns. Written
            # unbuffered (headers, then body), the body of every reply on a kept-alive
            # connection waited ~40 ms for the sender's delayed ACK (Nagle), which held each
            # worker process that long per webhook: a receiver artefact, not our pipeline.
            wbufsize = -1

            def do_POST(self) -> None:
                received = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with contextlib.suppress(ValueError):
                    envelope = json.loads(body)
                    created = event_time(envelope)
                    with receiver.lock:
                        if envelope.get("id") in receiver.ids:
                            receiver.duplicates += 1
                        elif created is not None:
                            receiver.ids.add(envelope.get("id"))
                            receiver.arrivals.append((created, received))

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def count(self) -> int:
        return len(self.arrivals)

    def window(self, start: float, end: float) -> list[float]:
        """Latencies (ms) of the events created in [start, end)."""
        with self.lock:
            return [(r - c) * 1000 for c, r in self.arrivals if start <= c < end]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def http_post(reader, writer, path: str, headers: dict[str, str], body: bytes) -> int:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    start = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
    writer.write(f"{start}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while size := int((await reader.readline()).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    else:
        await reader.readexactly(length)
    return status


def generate_events(
    port: int, key: str, products: list[int], rate: float, seconds: float, connections: int = 16
) -> dict[str, Any]:
    """POST stock receipts at ``rate`` per second (open loop: on a clock, not on replies)
    for ``seconds``, over ``connections`` keep-alive connections; each makes one
    ``stock.updated`` event. Return counts, the achieved rate and this process's CPU."""
    import asyncio

    async def run() -> dict[str, Any]:
        queue: asyncio.Queue = asyncio.Queue()
        results = {"ok": 0, "failed": 0, "latencies": []}
        headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}

        async def client() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                while (product := await queue.get()) is not None:
                    body = json.dumps(
                        {"product": product, "quantity": 1, "kind": "receipt"}
                    ).encode()
                    started = time.perf_counter()
                    status = await http_post(
                        reader, writer, "/api/v1/inventory/movements/", headers, body
                    )
                    results["latencies"].append((time.perf_counter() - started) * 1000)
                    results["ok" if status == 201 else "failed"] += 1
            finally:
                writer.close()

        tasks = [asyncio.ensure_future(client()) for _ in range(connections)]
        loop = asyncio.get_running_loop()
        total = int(rate * seconds)
        start = loop.time()
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(products[i % len(products)])
        for _ in tasks:
            queue.put_nowait(None)
        await asyncio.gather(*tasks)
        results["seconds"] = loop.time() - start
        return results

    cpu = time.process_time()
    results = asyncio.run(run())
    results["driver_cpu_s"] = time.process_time() - cpu
    results["rate"] = results["ok"] / results["seconds"]
    lat = sorted(results.pop("latencies")) or [0.0]
    results["api_p50_ms"] = percentile(lat, 50)
    results["api_p99_ms"] = percentile(lat, 99)
    return results


def create_webhook_endpoint(server: Server, admin_key: str, url: str) -> str:
    """Subscribe ``url`` to ``stock.updated`` through the API; return the endpoint's id."""
    request = urllib.request.Request(  # noqa: S310 (127.0.0.1 only)
        server.base + "/api/v1/webhooks/endpoints/",
        data=json.dumps({"url": url, "event_types": ["stock.updated"]}).encode(),
        method="POST",
        headers={"Authorization": f"Api-Key {admin_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        if response.status != 201:
            raise BenchError(f"creating the webhook endpoint answered {response.status}")
        return json.loads(response.read())["id"]


def set_endpoint_active(server: Server, admin_key: str, endpoint_id: str, active: bool) -> None:
    """Pause (or resume) the webhook endpoint ``endpoint_id`` through the API."""
    request = urllib.request.Request(  # noqa: S310 (127.0.0.1 only)
        f"{server.base}/api/v1/webhooks/endpoints/{endpoint_id}/",
        data=json.dumps({"is_active": active}).encode(),
        method="PATCH",
        headers={"Authorization": f"Api-Key {admin_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        if response.status != 200:
            raise BenchError(f"pausing the webhook endpoint answered {response.status}")
