"""Fixtures for the admin screens, shared by the integration tests."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client


@pytest.fixture
def admin_client(client, staff_user):
    """The Django test client logged in as a superuser."""
    client.force_login(staff_user)
    return client


@pytest.fixture
def make_staff(db):
    """Return a function making a logged-in client for a staff member with ``codenames``."""

    def make(*codenames: str, username: str = "clerk") -> Client:
        user = get_user_model().objects.create_user(
            username=username, password="correct horse battery", is_staff=True
        )
        for codename in codenames:
            app_label, name = codename.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=name)
            )
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def steady_rate_windows(monkeypatch):
    """Rate limits count in fixed windows aligned to the clock (a minute, ten minutes):
    a test counting up to a limit failed whenever a window ended among its requests, so
    the likelier the slower the machine. The limiter's clock here starts a second into a
    new day (every window begins then) and runs at the real pace, so a test has minutes
    before any window ends."""
    import time
    import types

    from pms_backend.api import ratelimit

    day = 24 * 3600
    start, started = (time.time() // day + 1) * day + 1, time.monotonic()
    clock = types.SimpleNamespace(time=lambda: start + time.monotonic() - started)
    monkeypatch.setattr(ratelimit, "time", clock)
