"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.cache import cache

from audit.actors import Actor

REQUIRE_SERVICES = os.environ.get("PMS_REQUIRE_SERVICES") == "1"


def _need(service: str, available: bool) -> None:
    if available:
        return
    message = f"needs {service}: set {'DATABASE_URL' if service == 'PostgreSQL' else 'REDIS_URL'}"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def wait_out_midnight(seconds: float = 60) -> None:
    """Sleep past 00:00 UTC (the shop's day) if it is less than ``seconds`` away: a test
    that counts "today's" orders must place and count them on one day, and would fail by
    chance if the day ended between the two."""
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    left = (midnight - now).total_seconds()
    if left < seconds:
        time.sleep(left + 1)


@pytest.fixture
def clear_of_midnight():
    """``wait_out_midnight`` for a test whose fixtures already place today's orders: name
    it first (``@pytest.mark.usefixtures("clear_of_midnight")``), so that it runs before
    them."""
    wait_out_midnight()


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """On the test database (only), a superuser's flush may TRUNCATE the audit tables
    between tests: the audit migrations' TRUNCATE trigger lets ``pms.audit_truncate``
    through for superusers."""
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all():
            if connection.vendor != "postgresql":
                continue
            name = connection.ops.quote_name(connection.settings_dict["NAME"])
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER DATABASE {name} SET pms.audit_truncate = 'allowed'")
            # Sessions read the database's settings when they open: start new ones.
            connection.close()
            if hasattr(connection, "close_pool"):
                connection.close_pool()
    yield


@pytest.fixture(autouse=True)
def _service_requirements(request):
    if request.node.get_closest_marker("postgres"):
        _need("PostgreSQL", settings.DATABASE_BACKEND == "postgresql")
    if request.node.get_closest_marker("redis"):
        _need("Redis", bool(settings.REDIS_URL))


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache (only our own keys, even on a shared Redis)."""
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()
    yield


@pytest.fixture
def system_actor() -> Actor:
    return Actor.system("tests")


@pytest.fixture
def make_key(db, system_actor):
    """Return a function creating an API key with ``scopes`` and returning the raw key."""
    from pms_backend.apikeys.services import api_key_create

    def make(scopes: str = "storefront", name: str = "test key", **kwargs) -> str:
        _, raw = api_key_create(name=name, scopes=scopes.split(","), actor=system_actor, **kwargs)
        return raw

    return make


def _client_with(raw_key: str):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    client.raw_key = raw_key
    return client


@pytest.fixture
def storefront(make_key):
    """An API client holding a storefront key."""
    return _client_with(make_key("storefront", name="storefront"))


@pytest.fixture
def admin_api(make_key):
    """An API client holding a key with every scope."""
    return _client_with(make_key("admin", name="integration"))


@pytest.fixture
def client_for(make_key):
    """Return a function making an API client holding a key with the given scopes."""

    def make(scopes: str):
        return _client_with(make_key(scopes, name=f"key {scopes}"))

    return make


@pytest.fixture
def category(db, system_actor):
    from catalog.services import category_create

    return category_create(actor=system_actor, name="Kitchen")


@pytest.fixture
def make_product(db, system_actor, category):
    """Return a function creating a product (Draft unless ``status`` says otherwise)."""
    from decimal import Decimal

    from catalog.services import product_create, product_transition

    counter = {"n": 0}

    def make(status: str = "draft", **fields):
        counter["n"] += 1
        fields.setdefault("sku", f"SKU-{counter['n']:04d}")
        fields.setdefault("name", f"Product {counter['n']}")
        fields.setdefault("price", Decimal("19.90"))
        fields.setdefault("category", category)
        product = product_create(actor=system_actor, **fields)
        if status in ("published", "archived"):
            product = product_transition(
                actor=system_actor, product_id=product.pk, transition="publish"
            )
        if status == "archived":
            product = product_transition(
                actor=system_actor, product_id=product.pk, transition="archive"
            )
        return product

    return make


@pytest.fixture
def staff_user(db):
    """A superuser with staff access (admin login)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(
        username="boss", email="boss@example.com", password="correct horse battery"
    )


@pytest.fixture
def receive(system_actor):
    """Return a function putting ``quantity`` of a product on hand (a receipt)."""
    from inventory.services import stock_record_movement

    def receive(product, quantity: int):
        return stock_record_movement(
            actor=system_actor,
            product_id=product.pk,
            kind="receipt",
            quantity=quantity,
            reason="test receipt",
        )

    return receive


ORDER_CUSTOMER = {"email": "ada@example.com", "name": "Ada Lovelace"}
ORDER_ADDRESS = {
    "line1": "1 Analytical Way",
    "city": "London",
    "postal_code": "N1",
    "country": "GB",
}


def order_body(*lines) -> dict:
    """Return an order request body for ``(product, quantity)`` pairs."""
    return {
        "items": [{"product": p.pk, "quantity": q} for p, q in lines],
        "customer": ORDER_CUSTOMER,
        "shipping_address": ORDER_ADDRESS,
    }


@pytest.fixture(autouse=True)
def _no_dispatch_task_left_waiting():
    """A test that queued an ``events.dispatch`` task no worker runs (eager mode off, a
    purged queue) leaves its flag behind for a few seconds; the next test's commits would
    leave their events to that task (pms_backend/events/handoff.py)."""
    yield
    from pms_backend.events.tasks import QUEUED_KEY
    from pms_backend.outbound.coordination import shared

    shared.delete(QUEUED_KEY)


@pytest.fixture(autouse=True)
def _no_redis_pause_left_behind():
    """A test that made Redis fail (the cache unreachable, say) leaves this process's
    pause of Redis on for ``PAUSE_SECONDS`` (5 s): the tests run within them found no
    cache, no rate limits and no hand-off of events at commit (the sweep's job then), so
    which of them failed depended on how many ran in 5 s. Each test starts unpaused."""
    yield
    from pms_backend.monitoring import redis_outage

    redis_outage.resume()


@pytest.fixture(autouse=True, scope="session")
def _celery_inline():
    """In-process tests run Celery tasks inline (at commit); e2e tests start real workers."""
    from pms_backend.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def receiver():
    """A real local HTTP receiver for webhooks (and permission to call 127.0.0.1)."""
    from django.test import override_settings

    from tests.receiver import Receiver

    server = Receiver().start()
    with override_settings(PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS=True):
        yield server
    server.stop()
