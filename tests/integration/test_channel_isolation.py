"""Deployments sharing one Redis server never hear each other's websocket events: each
deployment's settings give its channel layer a prefix of its own (real channels-redis
layers, configured by settings loaded in processes of their own)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

from pms_backend.events.broadcast import full_group

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]
ROOT = Path(__file__).resolve().parents[2]
SHOW_LAYER = (
    "import json; from django.conf import settings; "
    "print(json.dumps(settings.CHANNEL_LAYERS['default']))"
)


def deployment_layer(**env: str) -> dict:
    """The channel layer a process configured by ``env`` uses (its settings, loaded apart)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PMS_", "DATABASE_", "REDIS_"))
    }
    clean.update(DJANGO_SETTINGS_MODULE="pms_backend.settings", DJANGO_DEBUG="true", **env)
    shown = subprocess.run(
        [sys.executable, "-c", SHOW_LAYER],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    layer = json.loads(shown.stdout.strip().splitlines()[-1])
    assert layer["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    return layer["CONFIG"]


def shop(name: str, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": settings.REDIS_URL,  # one Redis server (and database) for every shop
        "DATABASE_URL": f"postgres://pms@db.example:5432/{name}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        **extra,
    }


async def listen(config: dict) -> tuple[RedisPubSubChannelLayer, str]:
    """A server process's layer with one socket in the staff's orders group."""
    layer = RedisPubSubChannelLayer(**config)
    channel = await layer.new_channel()
    await layer.group_add(full_group("orders"), channel)
    return layer, channel


async def until_subscribed(layers: list[RedisPubSubChannelLayer], group: str) -> None:
    """Wait until Redis holds each layer's subscription to ``group`` (pub/sub keeps nothing
    for a subscriber that comes later): returns at once when they are in, fails after 60 s
    (was a 0.3 s sleep, which a busy machine's Redis may not have served by then)."""
    import redis.asyncio

    names = [layer._get_group_channel_name(group) for layer in layers]
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL)
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            counts = dict(await client.pubsub_numsub(*names))
            if all(counts.get(name.encode(), 0) >= 1 for name in names):
                return
            assert asyncio.get_running_loop().time() < deadline, counts
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def hears(layer: RedisPubSubChannelLayer, channel: str, timeout: float) -> str | None:
    try:
        return (await asyncio.wait_for(layer.receive(channel), timeout))["text"]
    except TimeoutError:
        return None


async def test_a_shop_on_the_same_redis_never_hears_anothers_orders():
    first_shop = shop("pms")
    # Another shop, made from the same template: same database name, its own secret.
    second_shop = shop("pms")
    third_shop = shop("pms_outlet")
    web_a, worker_a = deployment_layer(**first_shop), deployment_layer(**first_shop)
    others = [deployment_layer(**second_shop), deployment_layer(**third_shop)]
    assert web_a == worker_a  # every process of one deployment agrees
    assert len({web_a["prefix"], *(o["prefix"] for o in others)}) == 3

    listeners = [await listen(config) for config in (web_a, *others)]
    relay = RedisPubSubChannelLayer(**worker_a)
    order = json.dumps({"type": "order.created", "data": {"customer": {"email": "a@b.c"}}})
    try:
        # Subscriptions settle before the publication (pub/sub keeps nothing for later).
        await until_subscribed([layer for layer, _ in listeners], full_group("orders"))
        await relay.group_send(full_group("orders"), {"type": "event.message", "text": order})
        (same_layer, same_channel), *strangers = listeners
        assert await hears(same_layer, same_channel, 3) == order
        for layer, channel in strangers:
            assert await hears(layer, channel, 1) is None
    finally:
        for layer, _ in listeners:
            await layer.flush()
        await relay.flush()


async def test_an_explicit_prefix_is_used_as_given():
    pinned = deployment_layer(**shop("pms", PMS_CHANNEL_PREFIX="shop-42:"))
    rotated = deployment_layer(**shop("pms_renamed", PMS_CHANNEL_PREFIX="shop-42:"))
    assert pinned["prefix"] == rotated["prefix"] == "shop-42:"
