"""The settings service: defaults, typed values per shop and per product, the cache, the
refusals, audit and events, the API and the admin, and the code that obeys the settings."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditLog
from catalog.models import ProductSetting
from inventory.models import Stock
from pms_backend.errors import InvalidInput, NotFound
from pms_backend.events.broadcast import routes
from pms_backend.events.models import Event
from pms_backend.shopsettings import registry
from pms_backend.shopsettings.models import Setting
from pms_backend.shopsettings.registry import SettingType, Tunable
from pms_backend.shopsettings.selectors import setting_get
from pms_backend.shopsettings.services import (
    setting_reset,
    setting_set,
    settings_set_many,
)
from tests.conftest import order_body
from tests.integration.order_support import place
from tests.integration.problem_json import assert_problem

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("steady_rate_windows")]

SETTINGS = "/api/v1/settings/"
ADMIN = "/admin/settings/setting/"
LOW = "inventory.low_stock_threshold"
MINUTES = "orders.reservation_minutes"
TOKEN = "sk_live_do-not-leak-9f8e7d"


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the block's on-commit work (cache stamp, event dispatch) as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def secret_setting(monkeypatch):
    """A secret tunable in the registry for the duration of a test."""
    tunable = Tunable(
        key="payments.api_token",
        type=SettingType.SECRET,
        default=lambda: "",
        description="Token of the payment provider.",
    )
    monkeypatch.setitem(registry.TUNABLES, tunable.key, tunable)
    return tunable.key


def writes() -> tuple[int, int, list]:
    """Audit entries, events and every stored value: what a refusal must leave alone."""
    stored = sorted(Setting.objects.values_list("key", "value_json", "value_ct"))
    own = sorted(ProductSetting.objects.values_list("setting_id", "product_id", "value_json"))
    return AuditLog.objects.count(), Event.objects.count(), [stored, own]


def settings_events() -> list[Event]:
    return list(Event.objects.filter(type="settings.updated").order_by("pk"))


# --- defaults ---------------------------------------------------------------------------


def test_a_fresh_install_runs_on_the_defaults_without_rows(settings):
    Setting.objects.all().delete()

    assert setting_get(MINUTES) == 30
    assert setting_get(LOW) == 5
    assert setting_get(LOW, product_id=12345) == 5
    assert setting_get("orders.max_quantity_per_line") == 1000
    assert setting_get("orders.max_lines") == 100
    assert setting_get("webhooks.event_retention_days") == 30
    assert setting_get("ratelimit.orders_per_minute") == settings.PMS_RATE_LIMITS["orders"]


def test_defaults_follow_django_settings_at_call_time(settings):
    settings.PMS_ORDER_MAX_QUANTITY = 7
    settings.PMS_RESERVATION_MINUTES = 12

    assert setting_get("orders.max_quantity_per_line") == 7
    assert setting_get(MINUTES) == 12


def test_migrate_gives_every_tunable_a_row_without_a_value():
    rows = {s.key: s for s in Setting.objects.all()}

    assert set(registry.TUNABLES) <= set(rows)
    assert rows[MINUTES].type == "int"
    assert rows[MINUTES].value_json == ""
    assert rows[MINUTES].description == registry.TUNABLES[MINUTES].description


def test_an_unknown_key_is_not_found():
    with pytest.raises(NotFound) as caught:
        setting_get("orders.nonsense")
    assert caught.value.code == "unknown_setting"


# --- values: global, per product, the cache ------------------------------------------------


def test_a_global_value_beats_the_default_and_a_product_value_beats_both(
    system_actor, make_product, committed
):
    a, b = make_product(), make_product()

    with committed():
        setting_set(actor=system_actor, key=LOW, value=8)
        setting_set(actor=system_actor, key=LOW, value=2, product_ids=[a.pk])

    assert setting_get(LOW) == 8
    assert setting_get(LOW, product_id=a.pk) == 2
    assert setting_get(LOW, product_id=b.pk) == 8
    assert list(Setting.objects.get(pk=LOW).products.all()) == [a]
    assert list(a.settings.all()) == [Setting.objects.get(pk=LOW)]

    with committed():
        setting_reset(actor=system_actor, key=LOW, product_ids=[a.pk])
    assert setting_get(LOW, product_id=a.pk) == 8

    with committed():
        setting_reset(actor=system_actor, key=LOW)
    assert setting_get(LOW, product_id=a.pk) == 5
    assert not ProductSetting.objects.exists()


def test_reads_come_from_the_cache_until_a_change_commits(
    system_actor, django_capture_on_commit_callbacks
):
    assert setting_get(MINUTES) == 30
    with CaptureQueriesContext(connection) as reads:
        assert setting_get(MINUTES) == 30
        assert setting_get(LOW, product_id=1) == 5
    assert len(reads.captured_queries) == 0

    with django_capture_on_commit_callbacks() as callbacks:
        setting_set(actor=system_actor, key=MINUTES, value=45)
        assert setting_get(MINUTES) == 30  # not committed: nobody obeys it yet
    assert setting_get(MINUTES) == 30

    for callback in callbacks:  # the commit
        callback()
    assert setting_get(MINUTES) == 45


def test_decimal_bool_and_json_values_keep_their_type(system_actor, monkeypatch, committed):
    from decimal import Decimal

    for tunable in (
        Tunable("t.ratio", SettingType.DECIMAL, lambda: Decimal("1"), "", minimum=0, maximum=10),
        Tunable("t.flag", SettingType.BOOL, lambda: False, ""),
        Tunable("t.map", SettingType.JSON, lambda: {}, ""),
    ):
        monkeypatch.setitem(registry.TUNABLES, tunable.key, tunable)

    with committed():
        settings_set_many(
            actor=system_actor,
            values={"t.ratio": "2.50", "t.flag": True, "t.map": {"eu": [1, 2]}},
        )

    assert setting_get("t.ratio") == Decimal("2.50")
    assert setting_get("t.flag") is True
    assert setting_get("t.map") == {"eu": [1, 2]}
    assert Setting.objects.get(pk="t.ratio").value_json == '"2.50"'


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (MINUTES, "45", "must be a whole number"),
        (MINUTES, 45.0, "must be a whole number"),
        (MINUTES, True, "must be a whole number"),
        (MINUTES, 0, "must be from 1 to 1440"),
        (MINUTES, 1441, "must be from 1 to 1440"),
        (LOW, -1, "must be from 0 to 1000000"),
        ("ratelimit.orders_per_minute", "fast", "is not like"),
        ("ratelimit.orders_per_minute", "0/minute", "at least one request"),
        ("ratelimit.orders_per_minute", 120, "must be a string"),
    ],
)
def test_a_wrong_type_or_out_of_range_value_is_refused_and_nothing_written(
    system_actor, key, value, message
):
    before = writes()

    with pytest.raises(InvalidInput) as caught:
        setting_set(actor=system_actor, key=key, value=value)

    assert caught.value.code == "invalid_setting_value"
    assert key in caught.value.detail and message in caught.value.detail
    assert writes() == before


def test_unknown_keys_products_and_scopes_are_refused_and_nothing_written(
    system_actor, make_product
):
    product = make_product()
    before = writes()

    with pytest.raises(NotFound) as unknown_key:
        setting_set(actor=system_actor, key="orders.colour", value=1)
    with pytest.raises(NotFound) as unknown_product:
        setting_set(actor=system_actor, key=LOW, value=1, product_ids=[product.pk, 99999])
    with pytest.raises(InvalidInput) as shop_wide:
        setting_set(actor=system_actor, key=MINUTES, value=10, product_ids=[product.pk])

    assert unknown_key.value.code == "unknown_setting"
    assert unknown_product.value.code == "unknown_product"
    assert unknown_product.value.detail == "No product has the id 99999."
    assert unknown_product.value.errors == {"products": ["Unknown product id: 99999."]}
    assert shop_wide.value.code == "setting_not_product_scoped"
    assert writes() == before


def test_several_values_are_stored_all_or_none(system_actor):
    before = writes()

    with pytest.raises(InvalidInput) as caught:
        settings_set_many(
            actor=system_actor,
            values={MINUTES: 45, "orders.max_lines": 0, "orders.max_quantity_per_line": "x"},
        )

    assert set(caught.value.errors) == {"orders.max_lines", "orders.max_quantity_per_line"}
    assert writes() == before


# --- audit and events -----------------------------------------------------------------------


def test_a_change_is_audited_and_announced_once(system_actor, make_product):
    product = make_product()

    setting_set(actor=system_actor, key=LOW, value=3, product_ids=[product.pk])
    setting_set(actor=system_actor, key=LOW, value=3, product_ids=[product.pk])  # no change

    (entry,) = AuditLog.objects.filter(action="setting.updated")
    assert (entry.object_type, entry.object_id) == ("settings.setting", LOW)
    assert entry.actor_label == "job:tests"
    assert entry.changes == {f"product:{product.pk}": {"before": None, "after": 3}}

    (event,) = settings_events()
    assert (event.topic, event.subject) == ("settings", f"setting:{LOW}")
    assert event.data["key"] == LOW
    assert event.data["value"] == 5 and event.data["is_default"] is True
    assert event.data["products"] == [{"product": product.pk, "value": 3}]
    assert event.data["changed"] == [f"product:{product.pk}"]


def test_settings_events_go_to_staff_groups_only(system_actor):
    setting_set(actor=system_actor, key=MINUTES, value=20)

    assert [group for group, _ in routes(settings_events())] == ["pms.settings.full"]


def test_a_secret_is_encrypted_at_rest_and_masked_in_audit_and_events(
    system_actor, secret_setting, committed
):
    with committed():
        setting_set(actor=system_actor, key=secret_setting, value=TOKEN)
        setting_set(actor=system_actor, key=secret_setting, value=TOKEN + "-2")

    assert setting_get(secret_setting) == TOKEN + "-2"
    row = Setting.objects.get(pk=secret_setting)
    assert row.value_json == "" and row.value_ct and TOKEN not in row.value_ct
    first, second = AuditLog.objects.filter(action="setting.updated").order_by("pk")
    assert first.changes == {"value": {"before": None, "after": "***"}}
    assert second.changes == {"value": {"before": "***", "after": "***"}}
    for event in settings_events():
        assert event.data["value"] == "***"
    stored = json.dumps(list(AuditLog.objects.values("changes"))) + json.dumps(
        list(Event.objects.values("data"))
    )
    assert TOKEN not in stored


# --- the API ---------------------------------------------------------------------------------


def test_the_api_lists_every_setting_with_the_value_in_force(admin_api):
    body = admin_api.get(SETTINGS).json()

    by_key = {s["key"]: s for s in body["results"]}
    assert body["count"] == len(registry.TUNABLES)
    assert by_key[MINUTES] | {"updated_at": None} == {
        "key": MINUTES,
        "type": "int",
        "description": registry.TUNABLES[MINUTES].description,
        "sensitive": False,
        "per_product": False,
        "minimum": 1,
        "maximum": 1440,
        "default": 30,
        "value": 30,
        "is_default": True,
        "products": [],
        "updated_at": None,
    }


def test_the_api_changes_one_setting_for_some_products(admin_api, make_product, committed):
    a = make_product()

    with committed():
        response = admin_api.put(
            f"{SETTINGS}{LOW}/", {"value": 1, "products": [a.pk]}, format="json"
        )

    assert response.status_code == 200, response.content
    assert response.json()["products"] == [{"product": a.pk, "value": 1}]
    assert response.json()["value"] == 5
    assert setting_get(LOW, product_id=a.pk) == 1
    entry = AuditLog.objects.get(action="setting.updated")
    assert entry.actor_type == "api_key"

    with committed():
        reset = admin_api.put(
            f"{SETTINGS}{LOW}/", {"value": None, "products": [a.pk]}, format="json"
        )
    assert reset.json()["products"] == []
    assert setting_get(LOW, product_id=a.pk) == 5


def test_the_api_masks_sensitive_values_and_never_echoes_them(admin_api, secret_setting):
    written = admin_api.put(f"{SETTINGS}{secret_setting}/", {"value": TOKEN}, format="json")
    one = admin_api.get(f"{SETTINGS}{secret_setting}/")
    every = admin_api.get(SETTINGS)

    assert written.status_code == 200, written.content
    for response in (written, one, every):
        assert TOKEN.encode() not in response.content
    assert written.json()["value"] == "***" and one.json()["sensitive"] is True
    assert {s["key"]: s["value"] for s in every.json()["results"]}[secret_setting] == "***"


def test_the_api_changes_several_settings_at_once(admin_api, committed):
    with committed():
        response = admin_api.put(
            SETTINGS, {MINUTES: 15, "ratelimit.orders_per_minute": "30/minute"}, format="json"
        )

    assert response.status_code == 200, response.content
    values = {s["key"]: s["value"] for s in response.json()["results"]}
    assert values[MINUTES] == 15 and values["ratelimit.orders_per_minute"] == "30/minute"
    assert setting_get(MINUTES) == 15
    assert AuditLog.objects.filter(action="setting.updated").count() == 2


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (f"{SETTINGS}{MINUTES}/", {"value": "soon"}, 400, "invalid_setting_value"),
        (f"{SETTINGS}{MINUTES}/", {"value": 2000}, 400, "invalid_setting_value"),
        (f"{SETTINGS}{MINUTES}/", {"products": [1]}, 400, "validation_error"),
        (f"{SETTINGS}{MINUTES}/", {"value": 5, "colour": 1}, 400, "validation_error"),
        (f"{SETTINGS}{MINUTES}/", {"value": 5, "products": [1]}, 400, "setting_not_product_scoped"),
        (f"{SETTINGS}{LOW}/", {"value": 1, "products": [99999]}, 404, "unknown_product"),
        (f"{SETTINGS}{LOW}/", {"value": 1, "products": []}, 400, "validation_error"),
        (f"{SETTINGS}orders.colour/", {"value": 1}, 404, "unknown_setting"),
        (SETTINGS, {MINUTES: 10, "orders.colour": 1}, 404, "unknown_setting"),
        (SETTINGS, {MINUTES: 10, "orders.max_lines": 0}, 400, "invalid_setting_value"),
        (SETTINGS, [MINUTES], 400, "validation_error"),
        (SETTINGS, {}, 400, "validation_error"),
    ],
)
def test_the_api_refuses_bad_input_with_nothing_half_applied(
    admin_api, make_product, path, body, status, code
):
    make_product()
    before = writes()

    response = admin_api.put(path, body, format="json")

    problem = assert_problem(response, status, code)
    assert problem["detail"]
    assert writes() == before


def test_the_api_needs_the_settings_scope(client_for):
    storefront = client_for("storefront")

    assert_problem(storefront.get(SETTINGS), 403)
    assert_problem(storefront.put(f"{SETTINGS}{MINUTES}/", {"value": 5}, format="json"), 403)
    assert client_for("settings:manage").get(f"{SETTINGS}{MINUTES}/").status_code == 200


def test_the_schema_documents_the_settings_endpoints():
    from django.core.management import call_command
    from django.test import Client

    call_command("spectacular", "--fail-on-warn", "--file", "/dev/null")
    import yaml

    schema = yaml.safe_load(Client().get("/api/schema/").content)
    assert {"get", "put"} <= set(schema["paths"]["/api/v1/settings/"])
    assert {"get", "put"} <= set(schema["paths"]["/api/v1/settings/{key}/"])


# --- the code that obeys the settings ------------------------------------------------------


def test_the_reservation_minutes_setting_bounds_a_new_order(
    admin_api, storefront, make_product, receive, committed
):
    product = make_product("published")
    receive(product, 10)
    with committed():
        admin_api.put(f"{SETTINGS}{MINUTES}/", {"value": 90}, format="json")

    before = timezone.now()
    response = place(storefront, order_body((product, 1)))

    assert response.status_code == 201, response.content
    reserved_until = timezone.datetime.fromisoformat(response.json()["reserved_until"])
    assert before + timedelta(minutes=89) < reserved_until <= timezone.now() + timedelta(minutes=90)


def test_the_order_limits_follow_their_settings(
    system_actor, storefront, make_product, receive, committed
):
    a, b = make_product("published"), make_product("published")
    receive(a, 50)
    receive(b, 50)
    with committed():
        settings_set_many(
            actor=system_actor, values={"orders.max_lines": 1, "orders.max_quantity_per_line": 3}
        )

    assert_problem(place(storefront, order_body((a, 1), (b, 1))), 400, "invalid_order")
    assert_problem(place(storefront, order_body((a, 4))), 400, "invalid_order")
    assert place(storefront, order_body((a, 3))).status_code == 201


def test_a_low_stock_threshold_for_one_product_decides_when_stock_low_fires(
    system_actor, make_product, receive, committed
):
    own, other = make_product("published"), make_product("published")
    with committed():
        setting_set(actor=system_actor, key=LOW, value=2, product_ids=[own.pk])
    receive(own, 10)
    receive(other, 10)

    def adjust(product, quantity):
        from inventory.services import stock_record_movement

        stock_record_movement(
            actor=system_actor,
            product_id=product.pk,
            kind="adjustment",
            quantity=quantity,
            reason="count",
        )

    def lows(product) -> list[dict]:
        return [
            e.data for e in Event.objects.filter(type="stock.low", subject=f"product:{product.pk}")
        ]

    adjust(own, -5)  # 5: low for the shop, not for this product
    adjust(other, -5)
    assert lows(own) == [] and len(lows(other)) == 1
    assert Stock.objects.get(pk=own.pk).is_low is False

    adjust(own, -3)  # 2: its own threshold
    assert [(e["available"], e["low_stock_threshold"]) for e in lows(own)] == [(2, 2)]
    assert Stock.objects.get(pk=own.pk).is_low is True


def test_the_orders_rate_limit_follows_its_setting(
    system_actor, storefront, make_product, receive, committed
):
    product = make_product("published")
    receive(product, 50)
    with committed():
        setting_set(actor=system_actor, key="ratelimit.orders_per_minute", value="2/minute")

    statuses = [place(storefront, order_body((product, 1))).status_code for _ in range(3)]

    assert statuses == [201, 201, 429]


def test_event_retention_follows_its_setting(system_actor, committed):
    from pms_backend.events.relay import prune

    with committed():
        setting_set(actor=system_actor, key="webhooks.event_retention_days", value=2)
    now = timezone.now()
    old = Event.objects.create(type="stock.updated", topic="stock", data={}, dispatched_at=now)
    young = Event.objects.create(type="stock.updated", topic="stock", data={}, dispatched_at=now)
    Event.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=3))
    Event.objects.filter(pk=young.pk).update(created_at=now - timedelta(days=1))

    prune()

    assert set(Event.objects.filter(pk__in=[old.pk, young.pk]).values_list("pk", flat=True)) == {
        young.pk
    }


# --- the admin -----------------------------------------------------------------------------


def test_the_admin_lists_settings_with_values_in_force_masked_when_sensitive(
    admin_client, system_actor, secret_setting, make_product
):
    product = make_product(sku="OWN-1")
    setting_set(actor=system_actor, key=secret_setting, value=TOKEN)
    setting_set(actor=system_actor, key=LOW, value=1, product_ids=[product.pk])

    # Keys may break after a dot or an underscore (<wbr>) to fit a narrow screen.
    html = admin_client.get(ADMIN).content.decode().replace("<wbr>", "")

    assert MINUTES in html and "30 (default)" in html
    assert "OWN-1 = 1" in html
    assert "***" in html and TOKEN not in html
    # The filter by type names types in words, not Python's (int, bool).
    assert "Whole number" in html and "Yes or no" in html and ">int<" not in html
    page = admin_client.get(f"{ADMIN}{secret_setting}/change/").content.decode()
    assert TOKEN not in page and 'type="password"' in page


def test_the_admin_edits_a_setting_through_the_service(admin_client, staff_user, committed):
    page = admin_client.get(f"{ADMIN}{MINUTES}/change/")
    assert page.status_code == 200
    assert 'type="number"' in page.content.decode()

    refused = admin_client.post(f"{ADMIN}{MINUTES}/change/", {"value": "0"})
    assert refused.status_code == 200
    assert "1" in str(refused.context["adminform"].form.errors["value"])
    assert not AuditLog.objects.filter(action="setting.updated").exists()

    with committed():
        saved = admin_client.post(f"{ADMIN}{MINUTES}/change/", {"value": "45"})
    assert saved.status_code == 302
    assert setting_get(MINUTES) == 45
    entry = AuditLog.objects.get(action="setting.updated")
    assert (entry.actor_type, entry.actor_id) == ("user", str(staff_user.pk))

    with committed():
        admin_client.post(f"{ADMIN}{MINUTES}/change/", {"value": "45", "use_default": "on"})
    assert setting_get(MINUTES) == 30

    history = admin_client.get(f"{ADMIN}{MINUTES}/history/")
    assert history.status_code == 302
    assert "object_type=settings.setting" in history["Location"]


def test_the_admin_sets_a_value_for_one_product(admin_client, make_product, committed):
    product = make_product()
    form = {
        "value": "5",
        "use_default": "on",
        "product_values-TOTAL_FORMS": "1",
        "product_values-INITIAL_FORMS": "0",
        "product_values-MIN_NUM_FORMS": "0",
        "product_values-MAX_NUM_FORMS": "1000",
        "product_values-0-id": "",
        "product_values-0-setting": LOW,
        "product_values-0-product": str(product.pk),
        "product_values-0-value": "3",
    }

    with committed():
        response = admin_client.post(f"{ADMIN}{LOW}/change/", form)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    assert setting_get(LOW, product_id=product.pk) == 3
    assert setting_get(LOW) == 5
    assert AuditLog.objects.get(action="setting.updated").changes == {
        f"product:{product.pk}": {"before": None, "after": 3}
    }


def test_the_admin_offers_no_adding_or_deleting(admin_client):
    assert admin_client.get(f"{ADMIN}add/").status_code == 403
    assert admin_client.get(f"{ADMIN}{MINUTES}/delete/").status_code == 403


def test_the_admin_keeps_a_secret_when_its_field_is_left_empty(
    admin_client, system_actor, secret_setting, committed
):
    with committed():
        setting_set(actor=system_actor, key=secret_setting, value=TOKEN)

    with committed():
        kept = admin_client.post(f"{ADMIN}{secret_setting}/change/", {"value": ""})
    assert kept.status_code == 302
    assert setting_get(secret_setting) == TOKEN
    assert AuditLog.objects.filter(action="setting.updated").count() == 1

    with committed():
        admin_client.post(f"{ADMIN}{secret_setting}/change/", {"value": "rotated"})
    assert setting_get(secret_setting) == "rotated"


# --- every registered setting refuses values of the wrong shape, everywhere ----------------

# Values of the wrong shape for each type, as JSON (the API and the service take them) and
# as the text an admin form posts. A type the registry starts using must be added here.
WRONG_JSON = {
    SettingType.INT: ["5", 5.5, True, [5], {"value": 5}, 10**30, -(10**30)],
    SettingType.DECIMAL: ["x", True, [1], {"value": 1}, "NaN", "Infinity"],
    SettingType.BOOL: ["true", 1, 0, [True], {"value": True}],
    SettingType.STRING: [5, 5.5, True, ["x"], {"value": "x"}],
    SettingType.SECRET: ["", 5, True, ["x"]],
    SettingType.JSON: [],  # any JSON is of its shape; null resets
}
WRONG_TEXT = {
    SettingType.INT: ["", "5.5", "x", "1e3", str(10**30)],
    SettingType.DECIMAL: ["", "x", "NaN", "1e400"],
    SettingType.BOOL: [],
    SettingType.STRING: [],
    SettingType.SECRET: [],
    SettingType.JSON: ["{", "NaN"],
}
# Values of the right type that still mean nothing for that key (its own check).
MALFORMED = {
    "ratelimit.orders_per_minute": [
        "10/0m",  # was stored, then every POST /orders/ divided by zero: a checkout outage
        "10/0s",
        "10/00minute",
        "10/0",
        "1/999999999d",
        "5000000000/s",
        "10/-1m",
        "fast",
        "",
    ],
}


def _wrong_values(tunable: Tunable, kinds: dict) -> list:
    assert tunable.type in kinds, f"add values of the wrong shape for {tunable.type}"
    values = [*kinds[tunable.type], *MALFORMED.get(tunable.key, [])]
    if tunable.type == SettingType.STRING:
        values.append("x" * (tunable.max_length + 1))
    return values


def _admin_form(tunable: Tunable, text: str) -> dict[str, str]:
    form = {"value": text}
    if tunable.scope == "product":
        form |= {
            "product_values-TOTAL_FORMS": "0",
            "product_values-INITIAL_FORMS": "0",
            "product_values-MIN_NUM_FORMS": "0",
            "product_values-MAX_NUM_FORMS": "1000",
        }
    return form


@pytest.mark.parametrize("key", sorted(registry.TUNABLES))
def test_every_setting_refuses_values_of_the_wrong_shape_everywhere(
    key, system_actor, admin_api, admin_client, storefront, make_product, receive
):
    tunable = registry.TUNABLES[key]
    product = make_product("published")
    receive(product, 10)
    before = writes()

    for value in _wrong_values(tunable, WRONG_JSON):
        with pytest.raises(InvalidInput) as caught:
            setting_set(actor=system_actor, key=key, value=value)
        assert caught.value.code == "invalid_setting_value", value
        assert_problem(
            admin_api.put(f"{SETTINGS}{key}/", {"value": value}, format="json"),
            400,
            "invalid_setting_value",
        )
        refused = admin_api.put(SETTINGS, {key: value}, format="json")
        assert assert_problem(refused, 400, "invalid_setting_value")["errors"][key], value
        if tunable.scope == "product":
            with pytest.raises(InvalidInput):
                setting_set(actor=system_actor, key=key, value=value, product_ids=[product.pk])
    for text in _wrong_values(tunable, WRONG_TEXT):
        response = admin_client.post(f"{ADMIN}{key}/change/", _admin_form(tunable, text))
        assert response.status_code == 200, (text, response.get("Location"))
        assert response.context["adminform"].form.errors["value"], text

    assert writes() == before
    assert setting_get(key) == tunable.default_value()
    assert place(storefront, order_body((product, 1))).status_code == 201


def test_a_rate_without_a_period_stored_earlier_does_not_stop_checkout(
    storefront, make_product, receive, committed
):
    """A value stored before it was refused (by an older version) falls back to the default
    instead of failing every order."""
    from pms_backend.shopsettings.cache import settings_changed

    product = make_product("published")
    receive(product, 10)
    with committed():
        stored = Setting.objects.filter(pk="ratelimit.orders_per_minute")
        assert stored.update(value_json='"10/0m"') == 1
        settings_changed()

    response = place(storefront, order_body((product, 1)))

    assert response.status_code == 201, response.content
    assert setting_get("ratelimit.orders_per_minute") == "120/minute"
