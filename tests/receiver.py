"""A local webhook receiver for tests: a real HTTP server in a thread, recording requests.

It answers with whatever ``script`` says (status codes, delays), so drills can make it
fail, hang, then recover.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    at: float


@dataclass
class Receiver:
    """``answer(request_number) -> (status, delay_seconds, extra_headers)``; ``echo``
    answers with the request's own body instead of ``ok`` (a careless receiver)."""

    answer: Callable[[int], tuple[int, float, dict]] = lambda n: (200, 0.0, {})
    echo: bool = False
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    # Requests being answered right now, and the most there ever were at once.
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode()
                with receiver._lock:
                    number = len(receiver.received)
                    receiver.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                status, delay, extra = receiver.answer(number)
                try:
                    if delay:
                        time.sleep(delay)
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1
                reply = body.encode() if receiver.echo else b"ok"
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up (a timeout drill)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)
