"""The admin login throttles password guessing (django-axes): per username and per client
address, with an admin-styled lockout page and one audit entry per lockout."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditLog

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "a long enough passphrase 42"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = 5


@pytest.fixture
def ana(db):
    return get_user_model().objects.create_user(
        username="ana", password=PASSWORD, is_staff=True, is_superuser=True
    )


def sign_in(username: str, password: str, ip: str = "198.51.100.7"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post(LOGIN, {"username": username, "password": password})
    return client, response


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_many_wrong_passwords_then_the_right_one_does_not_get_in(ana):
    codes = [sign_in("ana", f"guess {i}")[1].status_code for i in range(40)]
    client, response = sign_in("ana", PASSWORD)

    assert codes[:4] == [200] * 4  # the form again, with its error
    assert set(codes[4:]) == {429}
    assert response.status_code == 429
    assert not signed_in(client)
    page = response.content.decode()
    assert "Too many failed sign-ins" in page
    assert "PMS admin" in page and 'id="site-name"' in page  # the admin's own frame
    assert "Try again in 15 minutes" in page
    assert int(response["Retry-After"]) == 15 * 60


def test_a_username_is_locked_whatever_address_the_guesses_come_from(ana):
    for i in range(5):
        sign_in("ana", "wrong", ip=f"203.0.113.{i + 1}")
    client, response = sign_in("ana", PASSWORD, ip="192.0.2.200")
    assert response.status_code == 429 and not signed_in(client)
    entry = AuditLog.objects.get(action="auth.login_locked_out")
    assert entry.changes["locked"]["after"] == ["username"]


def test_an_address_is_locked_whatever_usernames_it_tries_but_not_others(ana):
    for i in range(5):
        sign_in(f"nobody{i}", "wrong", ip="198.51.100.9")
    client, response = sign_in("ana", PASSWORD, ip="198.51.100.9")
    assert response.status_code == 429 and not signed_in(client)
    entry = AuditLog.objects.get(action="auth.login_locked_out")
    assert entry.changes["locked"]["after"] == ["address"]
    # Ana herself, from her own address, was never guessed at: she gets in.
    client, response = sign_in("ana", PASSWORD, ip="192.0.2.10")
    assert response.status_code == 302 and signed_in(client)


def test_a_lockout_is_audited_once_however_many_attempts_it_refuses(ana):
    for i in range(15):
        sign_in("ana", f"guess {i}")
    locked = AuditLog.objects.filter(action="auth.login_locked_out")
    assert locked.count() == 1
    entry = locked.get()
    assert entry.object_id == str(ana.pk)
    assert entry.ip == "198.51.100.7"
    assert entry.changes["locked"]["after"] == ["username", "address"]
    # The failures before the lockout are audited as such; the refused ones are not.
    assert AuditLog.objects.filter(action="auth.login_failed").count() == 4


def test_the_lockout_entry_of_an_unknown_username_keeps_the_name_out(db):
    typed = "ceo-password-is-hunter2"
    for _ in range(12):
        sign_in(typed, "wrong", ip="203.0.113.77")
    entry = AuditLog.objects.get(action="auth.login_locked_out")
    assert typed not in str(entry.changes) and typed not in entry.object_id
    assert entry.changes["unknown_username_hmac"]["after"]


def test_an_operator_can_lift_a_lockout_early(ana):
    from django.core.management import call_command

    for _ in range(5):
        sign_in("ana", "wrong", ip="192.0.2.30")
    assert sign_in("ana", PASSWORD, ip="192.0.2.31")[1].status_code == 429
    call_command("axes_reset_username", "ana")
    client, response = sign_in("ana", PASSWORD, ip="192.0.2.31")
    assert response.status_code == 302 and signed_in(client)
    # Locked again after the reset: a new lockout, with an entry of its own.
    for _ in range(5):
        sign_in("ana", "wrong", ip="192.0.2.32")
    locked = AuditLog.objects.filter(action="auth.login_locked_out")
    assert locked.count() == 2


def test_with_the_cache_unreachable_a_wrong_password_is_refused_not_a_500(ana):
    from axes.handlers.proxy import AxesProxyHandler
    from django.test import override_settings

    # Nothing listens on port 1: every cache call fails.
    dead = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.2},
        }
    }
    try:
        with override_settings(CACHES=dead):
            AxesProxyHandler.get_implementation(force=True)  # bound to the dead cache
            _, wrong = sign_in("ana", "wrong")
            client, right = sign_in("ana", PASSWORD)
            assert signed_in(client)
    finally:
        AxesProxyHandler.get_implementation(force=True)  # the real cache again
    assert wrong.status_code == 200 and "Please enter the correct" in wrong.content.decode()
    assert right.status_code == 302
