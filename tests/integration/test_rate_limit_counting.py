"""How rate limits are counted: which requests spend which budget, and in how many round
trips to Redis (ApiKeyAuthentication counts a key-bearing request's windows in one)."""

import secrets

import pytest
from django.test import override_settings
from redis.connection import AbstractConnection

from pms_backend.api import ratelimit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("steady_rate_windows")]

LIST = "/api/v1/products/"


def limits(**overrides):
    from django.conf import settings

    return override_settings(PMS_RATE_LIMITS={**settings.PMS_RATE_LIMITS, **overrides})


def made_up_key(prefix: str | None = None) -> str:
    return f"pms_{prefix or secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def key_count(raw_key: str) -> int:
    prefix = raw_key.split("_")[1]
    return ratelimit.peek("cred", f"key:{prefix}", ratelimit.rate("key"))


@pytest.fixture
def limiter_round_trips(monkeypatch):
    """Count the round trips to Redis that touch a rate-limit counter."""
    trips = []
    send = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        chunks = command if isinstance(command, list | tuple) else [command]
        if any(b":rl:" in bytes(chunk) for chunk in chunks):
            trips.append(command)
        return send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return trips


@pytest.mark.redis
def test_a_key_authenticated_request_is_limited_in_one_round_trip(storefront, limiter_round_trips):
    storefront.get(LIST)  # warm: the script is loaded once per Redis
    limiter_round_trips.clear()
    response = storefront.get(LIST)
    assert response.status_code == 200
    assert len(limiter_round_trips) == 1
    # ...and it counted both windows: the key's and the address's.
    assert key_count(storefront.raw_key) == 2
    assert ratelimit.peek("ip", "127.0.0.1", ratelimit.rate("ip")) == 2


@pytest.mark.redis
def test_order_placement_adds_no_round_trip(storefront, make_product, receive, limiter_round_trips):
    from tests.conftest import order_body

    product = make_product("published")
    receive(product, 5)
    storefront.get(LIST)
    limiter_round_trips.clear()
    response = storefront.post(
        "/api/v1/orders/", order_body((product, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 201
    assert len(limiter_round_trips) == 1


def test_both_limits_still_hold_for_key_authenticated_requests(storefront):
    with limits(ip="3/minute", key="1000/minute"):
        codes = [storefront.get(LIST).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    with limits(ip="1000/minute", key="5/minute"):
        codes = [storefront.get(LIST).status_code for _ in range(3)]
    # The key had spent 3 above: the request refused by the address limit cost it nothing.
    assert codes == [200, 200, 429]


def test_the_address_limit_answers_as_the_guard_does(storefront, client):
    with limits(ip="2/minute"):
        storefront.get(LIST), storefront.get(LIST)
        by_key = storefront.get(LIST)
        without_key = client.get("/api/v1/ping/")
    for refused in (by_key, without_key):
        assert refused.status_code == 429
        assert refused["Content-Type"] == "application/problem+json"
        assert refused.json()["code"] == "rate_limited"
        assert refused.json()["detail"].startswith("More than 2 requests from this address")
        assert refused["RateLimit-Remaining"] == "0"
        assert 1 <= int(refused["Retry-After"]) <= 61
    # Refused by the address limit, the request did not spend the key's budget.
    assert key_count(storefront.raw_key) == 2


def test_requests_without_the_key_never_spend_its_budget(storefront, client):
    prefix = storefront.raw_key.split("_")[1]
    with limits(key="3/minute", auth_failures="1000/10m"):
        for _ in range(5):
            client.get(LIST)  # no key
            client.get(LIST, HTTP_AUTHORIZATION=f"Api-Key {made_up_key(prefix)}")  # its prefix
            client.get(LIST, HTTP_X_API_KEY=made_up_key(prefix))
        codes = [storefront.get(LIST).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_a_flood_of_made_up_keys_is_refused_and_costs_no_key_lookup(
    client, make_key, django_assert_num_queries
):
    good = make_key("storefront")
    with limits(auth_failures="3/10m"):
        codes = [
            client.get(LIST, HTTP_AUTHORIZATION=f"Api-Key {made_up_key()}").status_code
            for _ in range(3)
        ]
        # Locked out: each new prefix would cost a database query if it were looked up.
        with django_assert_num_queries(0):
            flood = [client.get(LIST, HTTP_X_API_KEY=made_up_key()).status_code for _ in range(20)]
        # A real prefix with a wrong secret is refused alike: no hint that the prefix exists.
        near = client.get(LIST, HTTP_X_API_KEY=made_up_key(good.split("_")[1]))
    assert codes == [401, 401, 401]
    assert set(flood) == {429}
    assert near.status_code == 429
    assert near.json()["detail"] == "Too many failed authentications from this address."
    assert 1 <= int(near["Retry-After"]) <= 601
    assert "RateLimit-Limit" in near
    assert key_count(good) == 0


def test_a_valid_key_is_served_from_an_address_locked_out_for_guessing(
    client, make_key, django_assert_max_num_queries
):
    """One guesser behind a shared address (a NAT, an unconfigured proxy) must not lock
    the shop's storefront out: the lockout throttles guesses, never a valid key."""
    storefront = make_key("storefront")
    with limits(auth_failures="3/10m"):
        for _ in range(4):
            client.get(LIST, HTTP_X_API_KEY=made_up_key())
        assert client.get(LIST, HTTP_X_API_KEY=made_up_key()).status_code == 429
        served = [client.get(LIST, HTTP_X_API_KEY=storefront) for _ in range(3)]
        # A key created during the lockout is served too (its prefix is learnt at once).
        made_after = make_key("storefront", name="new storefront")
        new = client.get(LIST, HTTP_AUTHORIZATION=f"Api-Key {made_after}")
        # ...and guesses keep being refused, at no database query each.
        with django_assert_max_num_queries(1):
            after = [client.get(LIST, HTTP_X_API_KEY=made_up_key()).status_code for _ in range(10)]
    assert [r.status_code for r in served] == [200, 200, 200]
    assert new.status_code == 200
    assert set(after) == {429}
    # The valid key spent its own budget, not the address's failures.
    assert key_count(storefront) == 3
    assert int(served[-1]["RateLimit-Remaining"]) > 0


def test_clearing_the_counters_lifts_a_lockout_at_once(client, make_key):
    from django.core.cache import cache

    with limits(auth_failures="2/10m"):
        for _ in range(3):
            client.get(LIST, HTTP_X_API_KEY=made_up_key())
        assert client.get(LIST, HTTP_X_API_KEY=made_up_key()).status_code == 429
        cache.delete_pattern("rl:*") if hasattr(cache, "delete_pattern") else cache.clear()
        assert client.get(LIST, HTTP_X_API_KEY=made_up_key()).status_code == 401


def test_a_key_sent_where_no_key_is_checked_still_counts_against_the_address(client):
    with limits(ip="3/minute"):
        codes = [
            client.get("/api/v1/ping/", HTTP_X_API_KEY=made_up_key()).status_code for _ in range(4)
        ]
        missing = client.get("/api/v1/no-such-thing/", HTTP_X_API_KEY=made_up_key())
    assert codes == [200, 200, 200, 429]
    assert missing.status_code == 429
    assert missing["RateLimit-Remaining"] == "0"


def test_a_staff_session_is_counted_per_user(admin_client):
    with limits(key="2/minute"):
        codes = [admin_client.get(LIST).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


@pytest.mark.parametrize("redis_down", [True])
def test_an_unreachable_counter_store_lets_requests_through(storefront, monkeypatch, redis_down):
    def broken(*args, **kwargs):
        raise ConnectionError("counter store down")

    monkeypatch.setattr(ratelimit, "_count", broken)
    with limits(ip="1/minute", key="1/minute"):
        codes = [storefront.get(LIST).status_code for _ in range(3)]
    assert codes == [200, 200, 200]


def test_count_stops_at_the_first_refusal_and_at_a_shut_gate():
    rate = ratelimit.Rate.parse
    first, second = ("t1", "x", rate("1/minute")), ("t2", "x", rate("5/minute"))
    gate = ("tg", "x", rate("1/minute"))
    assert [v.remaining for v in ratelimit.count([first, second]).counted()] == [0, 4]
    refused = ratelimit.count([first, second])
    assert refused.verdicts[1] is None and not refused.verdicts[0].allowed
    ratelimit.hit([gate])
    shut = ratelimit.count([second], gate=gate, gate_at=0)
    assert shut.refused_by_gate(gate) and shut.verdicts == [None]
    assert ratelimit.peek("t2", "x", second[2]) == 1
