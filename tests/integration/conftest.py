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
