"""What fuzzing the API against its schema found (tests/e2e/test_schema_fuzz.py), pinned
down: odd input is a 400, never a 500; the schema documents every answer truthfully."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.integration.problem_json import assert_problem

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return Client().get("/api/schema/?format=json").json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


# --- Dates PostgreSQL cannot take -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/orders/",
        "/api/v1/inventory/movements/",
        "/api/v1/audit/",
        "/api/v1/webhooks/deliveries/",
    ],
)
@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("2026-01-01T10:00:00+20:05", 200),  # legal ISO 8601, beyond PostgreSQL's ±15:59
        ("0199-01-15T13:15:28-23:57", 200),
        ("0001-01-01T00:00:00+05:00", 400),  # before year 1 in UTC
        ("9999-12-31T23:00:00-05:00", 400),  # after year 9999 in UTC
    ],
)
def test_time_filters_take_any_offset_and_refuse_moments_out_of_range(
    admin_api, url, moment, status
):
    for name in ("since", "until"):
        response = admin_api.get(url, {name: moment})
        if status == 400:
            assert_problem(response, 400, "validation_error")
            assert name in response.json()["errors"]
        else:
            assert response.status_code == 200, response.content


def test_an_offset_is_read_as_the_moment_it_names(admin_api, make_product, receive):
    receive(make_product(), 1)
    # The movement happened "now"; ten hours ahead of +20:00 is still far in the past.
    assert (
        admin_api.get(
            "/api/v1/inventory/movements/", {"since": "2000-01-01T00:00:00+20:00"}
        ).json()["count"]
        == 1
    )
    assert (
        admin_api.get(
            "/api/v1/inventory/movements/", {"until": "2000-01-01T00:00:00+20:00"}
        ).json()["count"]
        == 0
    )


# --- Filters: what the schema admits is answered, what it refuses is a 400 --------------


def test_an_unknown_parent_or_product_is_an_empty_page_not_a_400(admin_api, category):
    assert admin_api.get("/api/v1/categories/", {"parent": 999_999}).json()["count"] == 0
    assert admin_api.get("/api/v1/inventory/movements/", {"product": 999_999}).json()["count"] == 0


@pytest.mark.parametrize("value", ["0", "1.5", "abc", str(2**63)])
def test_id_filters_refuse_what_is_not_an_id(admin_api, value):
    assert_problem(admin_api.get("/api/v1/inventory/movements/", {"product": value}), 400)
    assert_problem(admin_api.get("/api/v1/categories/", {"parent": value}), 400)


def test_is_active_is_true_or_false(admin_api, system_actor):
    from catalog.services import category_create

    category_create(actor=system_actor, name="On")
    category_create(actor=system_actor, name="Off", is_active=False)
    names = lambda value: [  # noqa: E731
        c["name"]
        for c in admin_api.get("/api/v1/categories/", {"is_active": value}).json()["results"]
    ]
    assert names("true") == ["On"]
    assert names("false") == ["Off"]
    assert sorted(names("")) == ["Off", "On"]  # sent empty: no filter
    for odd in ("1", "yes", "TRUE"):
        assert_problem(admin_api.get("/api/v1/categories/", {"is_active": odd}), 400)


def test_empty_filters_are_no_filters(admin_api, make_product):
    make_product()
    response = admin_api.get("/api/v1/products/", {"status": "", "category": "", "page": ""})
    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert_problem(admin_api.get("/api/v1/products/", {"page_size": ""}), 400)


def test_stock_batch_takes_a_comma_separated_array(storefront, make_product, receive):
    lamp = make_product("published")
    receive(lamp, 4)
    assert storefront.get("/api/v1/stock/", {"products": f"{lamp.pk}"}).json()[0]["on_hand"] == 4
    for odd in ("", "0", "a,b", ",".join(["1"] * 101)):
        assert_problem(storefront.get("/api/v1/stock/", {"products": odd}), 400)


# --- Write bodies: JSON types as documented ----------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("is_active", 0),
        ("is_active", "true"),
        ("position", "3"),
        ("position", True),
        ("position", 2.0),
        ("name", 5),
        ("name", ["Lamps"]),
    ],
)
def test_a_value_of_another_json_type_is_refused(admin_api, field, value):
    body = {"name": "Lamps", field: value}
    response = admin_api.post("/api/v1/categories/", body, format="json")
    assert set(assert_problem(response, 400, "validation_error")["errors"]) == {field}


def test_a_price_is_a_string(admin_api, category):
    body = {"sku": "LAMP-1", "name": "Lamp", "category": category.pk}
    refused = admin_api.post("/api/v1/products/", {**body, "price": 12.5}, format="json")
    assert assert_problem(refused, 400)["errors"] == {
        "price": ['Must be a string, such as "12.50".']
    }
    assert (
        admin_api.post("/api/v1/products/", {**body, "price": "12.50"}, format="json").status_code
        == 201
    )


def test_nested_bodies_are_typed_too(storefront, make_product):
    lamp = make_product("published")
    response = storefront.post(
        "/api/v1/orders/",
        {
            "items": [{"product": str(lamp.pk), "quantity": 1}],
            "customer": {"email": "ada@example.com", "name": "Ada"},
            "shipping_address": {
                "line1": "1 Way",
                "city": "London",
                "postal_code": 1,
                "country": "GB",
            },
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="typed-1",
    )
    errors = assert_problem(response, 400, "validation_error")["errors"]
    assert set(errors) == {"items.0.product", "shipping_address.postal_code"}


# --- The schema tells the truth about errors ---------------------------------------------


def test_every_error_is_documented_as_problem_json(schema):
    assert schema["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "code",
    ]
    for method, path, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                content = response["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
                assert response["description"], (method, path, status)


def test_every_secured_operation_documents_401_403_and_429(schema):
    for method, path, operation in _operations(schema):
        statuses = set(operation["responses"])
        assert "429" in statuses, (method, path)
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        if any(operation.get("security") or []):
            assert {"401", "403"} <= statuses, (method, path)
        else:
            assert (method, path) == ("get", "/api/v1/ping/")
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert "404" in statuses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= statuses, (method, path)


def test_write_bodies_are_closed_objects(schema):
    for method, path, operation in _operations(schema):
        if "requestBody" not in operation:
            continue
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        if "$ref" not in body:
            continue  # a map of names to values (PUT /settings/), no fixed properties
        component = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
        assert component["additionalProperties"] is False, (method, path)
    order = schema["components"]["schemas"]["OrderCreateRequest"]
    assert order["properties"]["items"]["minItems"] == 1
    for name in ("CustomerRequest", "ShippingAddressRequest", "OrderLineRequest"):
        assert schema["components"]["schemas"][name]["additionalProperties"] is False


def test_paging_parameters_state_their_bounds(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/products/"]["get"]["parameters"]}
    assert parameters["page"]["schema"] == {"type": "integer", "minimum": 1}
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert "allowEmptyValue" not in parameters["page_size"]
    assert parameters["status"]["allowEmptyValue"] is True
