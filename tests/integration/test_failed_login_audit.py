"""A failed admin login is audited without the raw string typed as an unknown username
(often a password typed into the wrong box): the log keeps entries forever."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditLog
from tests.integration.at_rest import database_dump

pytestmark = pytest.mark.django_db

TYPED = "Tr0ub4dor&3-hunter2"  # a password, typed into the username box


def test_an_unknown_username_is_kept_only_as_a_keyed_hash(client):
    for _ in range(2):
        client.post("/admin/login/", {"username": TYPED, "password": "whatever"})
    client.post("/admin/login/", {"username": "someone-else", "password": "whatever"})

    failed = list(AuditLog.objects.filter(action="auth.login_failed").order_by("pk"))

    assert len(failed) == 3
    assert all(e.actor_type == "anonymous" and e.object_id == "" for e in failed)
    hashes = [e.changes["unknown_username_hmac"]["after"] for e in failed]
    # The same name twice is the same value (attempts can still be told apart and
    # counted), but it is not the name, and it cannot be computed without the key.
    assert hashes[0] == hashes[1] != hashes[2] and len(hashes[0]) == 64
    assert TYPED.casefold() not in database_dump().casefold()


def test_a_known_users_failed_login_names_the_user(client):
    user = get_user_model().objects.create_user(username="mira", password="right one!")

    client.post("/admin/login/", {"username": "mira", "password": "wrong"})

    failed = AuditLog.objects.get(action="auth.login_failed")
    assert failed.object_type == "auth.user" and failed.object_id == str(user.pk)
    assert failed.object_repr == "mira" and "wrong" not in str(failed.changes)
