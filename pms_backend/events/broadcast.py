"""Push committed events to the websocket groups that may see them."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from pms_backend.events import registry
from pms_backend.events.models import PERSONAL_FIELDS, Event
from pms_backend.plurals import counted

logger = logging.getLogger(__name__)


def full_group(topic: str) -> str:
    """Staff and keys that see everything of a topic."""
    return f"pms.{topic}.full"


def public_group(topic: str) -> str:
    """Storefront keys: what the topic's public rule lets through (the published catalog
    and its stock), no drafts, no customer data."""
    return f"pms.{topic}.public"


def key_group(topic: str, prefix: str) -> str:
    """A key's own objects of a topic (a storefront's orders), without customer data."""
    return f"pms.{topic}.key.{prefix}"


def without_customer(envelope: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in envelope["data"].items() if k not in PERSONAL_FIELDS}
    return {**envelope, "data": data}


def _audiences(events: list[Event]) -> dict[str, tuple]:
    """Each topic's rules, bound to its events of this batch:
    ``{topic: (public, owner, public_omits)}``."""
    by_topic: dict[str, list[Event]] = {}
    for event in events:
        by_topic.setdefault(event.topic, []).append(event)
    bound = {}
    for name, batch in by_topic.items():
        topic = registry.topic(name)
        if topic is not None:
            bound[name] = (
                topic.public(batch) if topic.public else None,
                topic.owner(batch) if topic.owner else None,
                topic.public_omits,
            )
    return bound


def routes(events: list[Event]) -> list[tuple[str, dict[str, Any]]]:
    """Return ``(group, envelope)`` pairs for every audience of every event, in order."""
    audiences = _audiences(events)
    out = []
    for event in events:
        envelope = event.envelope()
        out.append((full_group(event.topic), envelope))
        public, owner, omits = audiences.get(event.topic, (None, None, ()))
        prefix = owner(event) if owner else None
        if prefix:
            out.append((key_group(event.topic, prefix), without_customer(envelope)))
        if public and public(event):
            if omits:
                data = {k: v for k, v in envelope["data"].items() if k not in omits}
                out.append((public_group(event.topic), {**envelope, "data": data}))
            else:
                out.append((public_group(event.topic), envelope))
    return out


def group_message(envelope: dict[str, Any]) -> dict[str, Any]:
    """The channel-layer message for one event: its JSON text, encoded once here rather
    than by each of a group's subscribers."""
    return {"type": "event.message", "text": json.dumps(envelope, separators=(",", ":"))}


async def send_all(layer, pairs: list[tuple[str, dict[str, Any]]]) -> None:
    for group, envelope in pairs:
        await layer.group_send(group, group_message(envelope))


_loop_lock = threading.Lock()
_loop: tuple[int, asyncio.AbstractEventLoop] | None = None


def _sending_loop() -> asyncio.AbstractEventLoop:
    """This process's long-lived event loop for channel-layer sends (its own thread).

    ``async_to_sync`` would run each send on a new event loop, and the Redis channel layer
    keeps its connections per loop: every broadcast paid a new Redis connection (about
    20 ms of wall time and 5 ms of CPU per event in scripts/bench.sh events).
    """
    global _loop
    with _loop_lock:
        if _loop is None or _loop[0] != os.getpid() or _loop[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="pms-broadcast", daemon=True).start()
            _loop = (os.getpid(), loop)
        return _loop[1]


def broadcast(events: list[Event], *, timeout: float = 10.0) -> None:
    """Send events to their groups. Best effort: webhooks are the durable channel, and a
    websocket client that missed something can catch up with ``since``."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        pairs = routes(events)
        if not pairs:
            return
        if type(layer).__name__ == "InMemoryChannelLayer":
            # Its queues belong to the caller's loop: send from there.
            async_to_sync(send_all)(layer, pairs)
        else:
            future = asyncio.run_coroutine_threadsafe(send_all(layer, pairs), _sending_loop())
            future.result(timeout)
    except Exception:
        logger.warning(
            "websocket broadcast failed for %s", counted(len(events), "event"), exc_info=True
        )
