"""A small events client: connect, authenticate, optionally seal, subscribe, print.

    python -m pms_backend.events.client --url ws://127.0.0.1:8000/ws/v1/events/ \\
        --key pms_xxx_yyy --topics products,stock [--seal] [--since evt_…] [--count N]

Each event is printed as one JSON line on stdout. With ``--seal`` the client makes an
X25519 key pair, sends the public half, and opens every JWE frame with the private one.
Also used by the tests as a library: ``async for event in events(...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from collections.abc import AsyncIterator

import websockets
from joserfc import jwe
from joserfc.jwk import OKPKey


async def events(
    url: str,
    key: str,
    topics: list[str],
    *,
    seal: bool = False,
    since: str | None = None,
    cafile: str | None = None,
    ready: asyncio.Event | None = None,
) -> AsyncIterator[dict]:
    """Yield events as dicts; set ``ready`` once subscribed."""
    private = OKPKey.generate_key("X25519") if seal else None
    context = None
    if url.startswith("wss://"):
        context = ssl.create_default_context(cafile=cafile)
    async with websockets.connect(url, ssl=context, max_size=2**20) as socket:
        auth: dict = {"type": "auth", "key": key}
        if private is not None:
            auth["jwk"] = private.as_dict(private=False)
        await socket.send(json.dumps(auth))
        reply = json.loads(await socket.recv())
        if reply.get("type") != "authenticated":
            raise RuntimeError(f"authentication refused: {reply}")
        subscribe: dict = {"type": "subscribe", "topics": topics}
        if since:
            subscribe["since"] = since
        await socket.send(json.dumps(subscribe))
        reply = json.loads(await socket.recv())
        if reply.get("type") != "subscribed":
            raise RuntimeError(f"subscription refused: {reply}")
        if ready is not None:
            ready.set()
        async for frame in socket:
            text = frame if isinstance(frame, str) else frame.decode()
            if private is not None and not text.startswith("{"):
                text = (jwe.decrypt_compact(text, private).plaintext or b"").decode()
            yield json.loads(text)


async def _main(args: argparse.Namespace) -> int:
    count = 0
    async for event in events(
        args.url,
        args.key,
        [t.strip() for t in args.topics.split(",") if t.strip()],
        seal=args.seal,
        since=args.since,
        cafile=args.cafile,
    ):
        print(json.dumps(event), flush=True)
        count += 1
        if args.count and count >= args.count:
            return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/v1/events/")
    parser.add_argument("--key", required=True, help="An API key (pms_…).")
    parser.add_argument("--topics", default="products,stock,orders")
    parser.add_argument("--seal", action="store_true", help="Ask for JWE-sealed frames.")
    parser.add_argument("--since", help="Replay events after this event id first.")
    parser.add_argument("--count", type=int, default=0, help="Stop after N events.")
    parser.add_argument("--cafile", help="CA bundle for wss:// with a private certificate.")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 0
    except (OSError, RuntimeError, websockets.WebSocketException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
