"""The events websocket of the production web process (``scripts/start.sh``) against
hostile or outlived clients, over real sockets: oversized frames are refused from their
header, unauthenticated sockets are capped per address, and a key's sockets close soon
after it is revoked or expires."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from audit.actors import Actor
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.services import api_key_create, api_key_revoke
from tests.e2e.clients import ws_url

pytestmark = pytest.mark.django_db(transaction=True)
BIG = 15_000_000  # bytes in each oversized message
# How long to wait for the server's answer (it comes in milliseconds, but a busy machine
# may take seconds); the bounds the guards promise (close within 5 s) are asserted apart.
WAIT = 30


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Slack for CI's busy 2-core machine, the guards' promises unchanged. Sockets wait
    60 s to authenticate (default 5 s): the cap test opens ten, an eleventh and
    authenticates the first, which a stalled machine could not always fit in 5 s (no test
    here is about that timer: tests/integration/test_websockets.py is). Keys are checked
    every 0.5 s (default 2 s): a socket must still close within 5 s of its key's
    revocation or expiry, and now has 4.5 s rather than 3 s of room for stalls."""
    return {"PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS": "60", "PMS_WEBSOCKET_KEY_CHECK_SECONDS": "0.5"}


@pytest.fixture
def open_socket(server_process):
    """Return a function opening a websocket to the server (closed after the test)."""
    with contextlib.ExitStack() as stack:

        def open_one(key: str | None = None) -> ClientConnection:
            headers = {"Authorization": f"Api-Key {key}"} if key else None
            return stack.enter_context(
                connect(ws_url(server_process.base_url), additional_headers=headers)
            )

        yield open_one


def raw_upgrade(server) -> socket.socket:
    """A plain TCP socket through the websocket handshake, for frames no library sends."""
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws/v1/events/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def server_close_code(sock: socket.socket) -> int | None:
    """Read what the server sends until it hangs up; return the code of its close frame."""
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            data += chunk
    # An unmasked close frame from the server: 0x88, length, then the code.
    at = data.find(b"\x88")
    return struct.unpack("!H", data[at + 2 : at + 4])[0] if at >= 0 else None


def close_code(ws: ClientConnection, timeout: float) -> tuple[int | None, str]:
    """Wait for the server to close ``ws``; return its close code and reason."""
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")


def group_memory(pgid: int) -> tuple[int, int]:
    """Sum of current and peak resident memory (VmRSS, VmHWM; bytes) of a process group."""
    rss = hwm = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            status = (entry / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                kib = int(value.split()[0]) * 1024
                rss, hwm = (rss + kib, hwm) if name == "VmRSS" else (rss, hwm + kib)
    return rss, hwm


def masked_header(length: int) -> bytes:
    """A client's header of one text frame of ``length`` bytes (mask key all zeros)."""
    return struct.pack("!BBQ", 0x81, 0x80 | 127, length) + b"\0\0\0\0"


# --- item: oversized messages --------------------------------------------------------------


def test_an_oversized_frame_is_refused_from_its_header(server_process):
    sock = raw_upgrade(server_process)
    # A frame announcing 15 MB, of which a few bytes follow: a server that reads messages
    # before measuring them waits for the rest. (More bytes than the websocket process reads
    # before it answers would race its close: nginx, failing to write them to the closed
    # socket, may hang up before relaying the close frame. The client loses its connection
    # either way; this test looks at the code.)
    sock.sendall(masked_header(BIG) + b"x" * 16)
    assert server_close_code(sock) == 1009
    sock.close()


def test_big_frames_from_many_sockets_leave_the_servers_memory_alone(server_process, open_socket):
    pgid = server_process.process.pid
    warm = open_socket()
    warm.send(json.dumps({"type": "ping"}))
    assert json.loads(warm.recv(timeout=WAIT)) == {"type": "pong"}
    rss_before, peak_before = group_memory(pgid)

    def attack() -> None:
        # Unauthenticated, as an attacker would: the whole 15 MB message, as fast as the
        # server takes it.
        sock = raw_upgrade(server_process)
        with contextlib.suppress(OSError):  # the server hangs up mid-message
            sock.sendall(masked_header(BIG) + b"x" * BIG)
        sock.close()

    threads = [threading.Thread(target=attack) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    rss_after, peak_after = group_memory(pgid)
    print(
        f"\n  server RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB, peak "
        f"{peak_before / 2**20:.0f} -> {peak_after / 2**20:.0f} MiB after 8 sockets each "
        f"sent a {BIG / 1e6:.0f} MB message"
    )
    # 8 x 15 MB read into memory would be 120 MB at the least.
    assert peak_after - peak_before < 20 * 2**20
    assert rss_after - rss_before < 20 * 2**20
    # The server carries on.
    warm.send(json.dumps({"type": "ping"}))
    assert json.loads(warm.recv(timeout=WAIT)) == {"type": "pong"}


def test_the_eleventh_unauthenticated_socket_from_one_address_is_refused(
    server_process, open_socket
):
    cap = settings.PMS_WEBSOCKET_UNAUTHENTICATED_PER_ADDRESS
    key = _key("cap-test")
    waiting = [open_socket() for _ in range(cap)]
    for ws in waiting:  # each is open and answers
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=WAIT)) == {"type": "pong"}
    assert close_code(open_socket(), timeout=WAIT) == (4429, "")
    # A socket that authenticates gives its place back; keyed sockets are not capped.
    waiting[0].send(json.dumps({"type": "auth", "key": key}))
    assert json.loads(waiting[0].recv(timeout=WAIT))["type"] == "authenticated"
    for ws in [open_socket(), *(open_socket(key) for _ in range(3))]:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=WAIT)) == {"type": "pong"}


# --- item: sockets live only as long as their key ------------------------------------------


def _key(name: str, **kwargs) -> str:
    _, raw = api_key_create(name=name, scopes=["storefront"], actor=Actor.system("tests"), **kwargs)
    return raw


def _subscribed(open_socket, raw: str) -> ClientConnection:
    ws = open_socket(raw)
    ws.send(json.dumps({"type": "subscribe", "topics": ["orders"]}))
    assert json.loads(ws.recv(timeout=WAIT))["type"] == "subscribed"
    return ws


def test_a_revoked_keys_sockets_close_within_five_seconds(server_process, open_socket):
    raw = _key("revoked soon")
    sockets = [_subscribed(open_socket, raw) for _ in range(2)]
    other = _subscribed(open_socket, _key("kept"))
    revoked = time.monotonic()
    api_key_revoke(prefix=raw.split("_")[1], actor=Actor.system("tests"))
    for ws in sockets:
        assert close_code(ws, timeout=WAIT) == (4410, "api key revoked")
    assert time.monotonic() - revoked < 5
    # Another key's socket stays.
    other.send(json.dumps({"type": "ping"}))
    assert json.loads(other.recv(timeout=WAIT)) == {"type": "pong"}


def test_an_expired_keys_socket_closes_within_five_seconds_of_expiry(server_process, open_socket):
    raw = _key("short-lived", expires_at=timezone.now() + timedelta(hours=1))
    ws = _subscribed(open_socket, raw)
    # It expires 3 s after its socket subscribed (was: 3 s after it was made, and a busy
    # machine could take that long to open and subscribe the socket).
    expires_at = timezone.now() + timedelta(seconds=3)
    ApiKey.objects.filter(prefix=raw.split("_")[1]).update(expires_at=expires_at)
    assert close_code(ws, timeout=WAIT) == (4440, "api key expired")
    late = (timezone.now() - expires_at).total_seconds()
    assert 0 <= late < 5, late
