"""``/ws/v1/events/``: live events for storefronts and staff, optionally sealed (JWE)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from pms_backend.apikeys import scopes
from pms_backend.apikeys.scopes import staff_has_scope
from pms_backend.events import broadcast, registry
from pms_backend.events.models import Event
from pms_backend.monitoring.metrics import WEBSOCKET_CONNECTIONS
from pms_backend.websocket import socket_guard
from pms_backend.websocket.socket_guard import (
    CLOSE_TOO_MANY,
    CLOSE_UNAUTHENTICATED,
    socket_key_authenticate,
)

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4096
MAX_MESSAGES = 30  # per window
MESSAGE_WINDOW = 10.0
REPLAY_LIMIT = 1000
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_TOO_BIG = 1009


class EventsConsumer(AsyncWebsocketConsumer):
    """Authenticate (header, staff session, or an ``auth`` message within
    ``PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS``, 5 s by default), then ``subscribe`` to topics.
    Each event arrives in the webhook envelope."""

    async def connect(self) -> None:
        self.api_key = None
        self.user = None
        self.session_key: str | None = None
        self.staff_scopes: frozenset[str] = frozenset()
        self.groups_joined: set[str] = set()
        self.jwk: OKPKey | None = None
        self.message_times: list[float] = []
        self.auth_timer = None
        self.counted = False
        self.ended = False
        self.waiting_ip: str | None = None  # holds a slot of the unauthenticated cap
        client = self.scope.get("client")
        self.ip = client[0] if client else None
        headers = {k.decode().lower(): v.decode() for k, v in self.scope.get("headers", [])}
        origin = headers.get("origin")
        raw = _header_key(headers)
        if raw:
            self.api_key, code = await database_sync_to_async(socket_key_authenticate)(raw, self.ip)
            if self.api_key is None:
                await self.close(code=code)
                return
        # Cookies ride along on any cross-site socket: a session's origin must be ours.
        elif await self._staff_session() and not _origin_allowed(origin, browser=True):
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
            return
        if origin and not _origin_allowed(origin, browser=False):
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
            return
        if not self.authenticated and self.ip is not None:
            if not socket_guard.waiting_claim(self.ip):
                # Accepted only to say why: the socket never holds anything.
                await self.accept()
                await self.close(code=CLOSE_TOO_MANY)
                return
            self.waiting_ip = self.ip
        await self.accept()
        WEBSOCKET_CONNECTIONS.inc()
        self.counted = True
        if not self.authenticated:
            self.auth_timer = asyncio.get_running_loop().call_later(
                settings.PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS,
                lambda: asyncio.ensure_future(self._auth_expired()),
            )
        elif self.api_key is not None:
            socket_guard.key_watch(self.api_key.prefix, self)
        elif self.session_key is not None:
            socket_guard.session_watch(self.session_key, self)
        await _ensure_local_poller()

    @property
    def authenticated(self) -> bool:
        return self.api_key is not None or self.user is not None

    async def _staff_session(self) -> bool:
        user = self.scope.get("user")
        if user is not None and getattr(user, "is_authenticated", False) and user.is_staff:
            # Permissions come from the database (groups): read them once, in a thread.
            self.staff_scopes = await database_sync_to_async(_staff_scopes)(user)
            self.user = user
            self.session_key = self.scope["session"].session_key
            return True
        return False

    async def _auth_expired(self) -> None:
        if not self.authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def close(self, code=None, reason=None) -> None:
        self._release()
        await super().close(code=code, reason=reason)

    async def end(self, code: int, reason: str) -> None:
        """Stop delivering and close: the socket's key was revoked or has expired, or its
        staff session ended."""
        self.ended = True
        await self.close(code=code, reason=reason)
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined.clear()

    def _release(self) -> None:
        """Give back what this socket holds in the process-wide guards."""
        waiting_ip = getattr(self, "waiting_ip", None)
        if waiting_ip is not None:
            socket_guard.waiting_release(waiting_ip)
            self.waiting_ip = None
        api_key = getattr(self, "api_key", None)
        if api_key is not None:
            socket_guard.key_unwatch(api_key.prefix, self)
        session_key = getattr(self, "session_key", None)
        if session_key is not None:
            socket_guard.session_unwatch(session_key, self)
        auth_timer = getattr(self, "auth_timer", None)
        if auth_timer:
            auth_timer.cancel()

    async def disconnect(self, code) -> None:
        if getattr(self, "counted", False):
            WEBSOCKET_CONNECTIONS.dec()
            self.counted = False
        self._release()
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    # --- incoming --------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.ended:
            return
        now = time.monotonic()
        self.message_times = [t for t in self.message_times if now - t < MESSAGE_WINDOW]
        self.message_times.append(now)
        if len(self.message_times) > MAX_MESSAGES:
            await self.close(code=CLOSE_TOO_MANY)
            return
        raw = text_data if text_data is not None else (bytes_data or b"").decode(errors="replace")
        if len(raw.encode()) > MAX_MESSAGE_BYTES:
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            message = json.loads(raw)
        except ValueError:
            await self._error("invalid_json", "Messages must be JSON objects.")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._error("invalid_message", 'Messages are objects with a "type".')
            return
        handler = {
            "auth": self._on_auth,
            "subscribe": self._on_subscribe,
            "unsubscribe": self._on_unsubscribe,
            "ping": self._on_ping,
        }.get(message["type"])
        if handler is None:
            await self._error("unknown_type", f"Unknown message type {message['type'][:40]!r}.")
            return
        if message["type"] not in ("auth", "ping") and not self.authenticated:
            await self._error("not_authenticated", "Authenticate first.")
            return
        try:
            await handler(message)
        except Exception:
            # A message we failed to foresee gets an answer; the socket and the process
            # carry on.
            logger.exception("websocket message %r failed", message["type"][:40])
            await self._error("server_error", "The message could not be handled.")

    async def _on_ping(self, message) -> None:
        await self._send_json({"type": "pong"})

    async def _on_auth(self, message) -> None:
        if self.authenticated and self.api_key is not None:
            await self._error("already_authenticated", "This socket is authenticated.")
            return
        key = message.get("key")
        if key is not None:
            if not isinstance(key, str):
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            self.api_key, code = await database_sync_to_async(socket_key_authenticate)(key, self.ip)
            if self.api_key is None:
                await self.close(code=code)
                return
        if not self.authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if self.auth_timer:
            self.auth_timer.cancel()
        if self.waiting_ip is not None:
            socket_guard.waiting_release(self.waiting_ip)
            self.waiting_ip = None
        if self.api_key is not None:
            socket_guard.key_watch(self.api_key.prefix, self)
        if "jwk" in message:
            try:
                jwk = OKPKey.import_key(message["jwk"])
                if jwk.as_dict().get("crv") != "X25519" or jwk.is_private:
                    raise ValueError("need a public X25519 key")
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                await self._error("invalid_jwk", f"The jwk must be a public X25519 JWK ({exc}).")
                return
            self.jwk = jwk
        await self._send_json(
            {
                "type": "authenticated",
                "sealed": self.jwk is not None,
                "topics": self.allowed_topics(),
            }
        )

    def allowed_topics(self) -> list[str]:
        return [topic for topic, scope in _topic_scopes().items() if self._has(scope)]

    def _has(self, scope: str) -> bool:
        if self.api_key is not None:
            return self.api_key.has_scope(scope)
        return scope in self.staff_scopes

    def _groups_for(self, name: str) -> list[str]:
        topic = registry.topic(name)
        if topic is None:
            return []
        if self.user is not None or self._has(topic.full_scope):
            return [broadcast.full_group(name)]
        if topic.public is not None:
            return [broadcast.public_group(name)]
        if topic.owner is not None and self.api_key is not None:
            return [broadcast.key_group(name, self.api_key.prefix)]
        return []

    async def _on_subscribe(self, message) -> None:
        topics = _topic_list(message.get("topics"))
        if topics is None:
            await self._invalid_topics()
            return
        since = message.get("since")
        if since is not None and not (isinstance(since, str) and since.startswith("evt_")):
            await self._error("invalid_since", 'since: an event id ("evt_…").')
            return
        readable = _topic_scopes()
        refused = [t for t in topics if t not in readable or not self._has(readable[t])]
        if refused:
            await self._error(
                "forbidden_topic",
                f"Not allowed: {', '.join(map(str, refused))[:100]}; allowed: "
                f"{', '.join(self.allowed_topics())}.",
            )
            return
        joined = []
        for topic in topics:
            for group in self._groups_for(topic):
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.add(group)
                joined.append(topic)
        await self._send_json({"type": "subscribed", "topics": sorted(set(joined))})
        if since is not None:
            await self._replay(since, topics)

    async def _on_unsubscribe(self, message) -> None:
        topics = _topic_list(message.get("topics"))
        if topics is None:
            await self._invalid_topics()
            return
        readable = _topic_scopes()
        for topic in topics:
            if topic in readable:
                for group in self._groups_for(topic):
                    await self.channel_layer.group_discard(group, self.channel_name)
                    self.groups_joined.discard(group)
        await self._send_json({"type": "unsubscribed", "topics": topics})

    async def _replay(self, since: str, topics: list[str]) -> None:
        routes = await database_sync_to_async(_replay_routes)(since, topics)
        for group, envelope in routes:
            if group in self.groups_joined:
                await self._deliver(envelope)

    # --- outgoing --------------------------------------------------------------------

    async def dispatch(self, message) -> None:
        # Channels closes stale database connections before every message it dispatches,
        # through a thread hop: per event and subscriber, that was a third of the server's
        # CPU in the websocket fan-out. Sending an event touches no database.
        if message["type"] == "event.message":
            await self.event_message(message)
        else:
            await super().dispatch(message)

    async def event_message(self, message) -> None:
        await self._deliver_text(message["text"])

    async def _deliver(self, envelope: dict) -> None:
        await self._deliver_text(json.dumps(envelope, separators=(",", ":")))

    async def _deliver_text(self, text: str) -> None:
        if self.ended:
            return
        if self.jwk is not None:
            header = {"alg": "ECDH-ES", "enc": "A256GCM"}
            text = jwe.encrypt_compact(header, text.encode(), self.jwk)
        await self.send(text_data=text)

    async def _send_json(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload))

    async def _error(self, code: str, detail: str) -> None:
        await self._send_json({"type": "error", "code": code, "detail": detail})

    async def _invalid_topics(self) -> None:
        readable = _topic_scopes()
        await self._error(
            "invalid_topics",
            f"topics: a list of 1 to {len(readable)} names from {sorted(readable)}.",
        )


def _topic_scopes() -> dict[str, str]:
    """``{topic: the scope that reads it}`` for the topics a socket may subscribe to."""
    return {topic.name: topic.read_scope for topic in registry.live_topics()}


def _topic_list(value) -> list[str] | None:
    """Return the topic names of a ``topics`` field, or None if it is not a short list of
    strings."""
    if not isinstance(value, list) or not 0 < len(value) <= len(_topic_scopes()):
        return None
    if not all(isinstance(topic, str) for topic in value):
        return None
    return list(dict.fromkeys(value))


def _staff_scopes(user) -> frozenset[str]:
    return frozenset(scope for scope in scopes.ALL_SCOPES if staff_has_scope(user, scope))


def _header_key(headers: dict[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "api-key" and value.strip():
        return value.strip()
    return headers.get("x-api-key", "").strip() or None


def _origin_allowed(origin: str | None, *, browser: bool) -> bool:
    if origin is None:
        return not browser
    host = urlsplit(origin).hostname or ""
    if origin in settings.CORS_ALLOWED_ORIGINS:
        return True
    allowed = settings.ALLOWED_HOSTS
    return (
        "*" in allowed
        or host in allowed
        or any(h.startswith(".") and (host == h[1:] or host.endswith(h)) for h in allowed)
    )


def _replay_routes(since: str, topics: list[str]) -> list[tuple[str, dict]]:
    start = Event.objects.filter(event_id=since).values_list("pk", flat=True).first()
    if start is None:
        return []
    events = list(
        Event.objects.filter(pk__gt=start, topic__in=topics).order_by("pk")[:REPLAY_LIMIT]
    )
    return broadcast.routes(events)


# --- embedded mode: no Redis, so the worker cannot reach this process's channel layer ----

_poller: asyncio.Task | None = None


async def _ensure_local_poller() -> None:
    """With the in-memory channel layer, follow the outbox from inside this process."""
    global _poller
    if not str(settings.CHANNEL_LAYERS["default"]["BACKEND"]).endswith("InMemoryChannelLayer"):
        return
    if _poller is None or _poller.done():
        _poller = asyncio.ensure_future(_follow_outbox())


async def _follow_outbox(interval: float = 0.25) -> None:
    def newest() -> int:
        return Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def after(cursor: int) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
        events = list(Event.objects.filter(pk__gt=cursor).order_by("pk")[:500])
        return (events[-1].pk if events else cursor), broadcast.routes(events)

    layer = get_channel_layer()
    cursor = await database_sync_to_async(newest)()
    while True:
        await asyncio.sleep(interval)
        try:
            cursor, routes = await database_sync_to_async(after)(cursor)
            await broadcast.send_all(layer, routes)
        except Exception:
            logger.warning("outbox follower failed; retrying", exc_info=True)
