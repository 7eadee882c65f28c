"""Bad input on product writes: problem+json with the right status and code, nothing saved."""

import json

import pytest

from catalog.models import Product
from tests.integration.problem_json import assert_problem, leaves_no_trace

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"


@pytest.fixture
def valid(category):
    """A body that creates a product, to spoil one field at a time."""
    return {"sku": "NEW-1", "name": "New thing", "price": "10.00", "category": category.pk}


@pytest.fixture
def existing(make_product):
    return make_product("draft", sku="TAKEN-1", slug="taken-slug")


def test_the_valid_body_is_accepted(admin_api, valid):
    # The baseline every refusal below spoils: without this, a refusal could be vacuous.
    assert admin_api.post(PRODUCTS, valid, format="json").status_code == 201


# --- Conflicts ------------------------------------------------------------------------


def test_duplicate_sku_on_create_is_409(admin_api, valid, existing):
    with leaves_no_trace():
        response = admin_api.post(PRODUCTS, {**valid, "sku": "TAKEN-1"}, format="json")

    body = assert_problem(response, 409, "duplicate_sku")
    assert "sku" in body["errors"]
    assert "TAKEN-1" in body["detail"]


def test_duplicate_slug_on_create_is_409(admin_api, valid, existing):
    with leaves_no_trace():
        response = admin_api.post(PRODUCTS, {**valid, "slug": "taken-slug"}, format="json")

    body = assert_problem(response, 409, "duplicate_slug")
    assert "slug" in body["errors"]


def test_same_name_gets_its_own_slug(admin_api, valid, existing):
    body = admin_api.post(PRODUCTS, {**valid, "name": existing.name}, format="json").json()

    assert body["slug"] != existing.slug


def test_duplicate_sku_on_patch_is_409(admin_api, make_product, existing):
    other = make_product("draft")

    with leaves_no_trace():
        response = admin_api.patch(f"{PRODUCTS}{other.pk}/", {"sku": "TAKEN-1"}, format="json")

    assert_problem(response, 409, "duplicate_sku")
    other.refresh_from_db()
    assert other.sku != "TAKEN-1"


def test_duplicate_slug_on_patch_is_409(admin_api, make_product, existing):
    other = make_product("draft")

    with leaves_no_trace():
        response = admin_api.patch(f"{PRODUCTS}{other.pk}/", {"slug": "taken-slug"}, format="json")

    assert_problem(response, 409, "duplicate_slug")


def test_patch_keeping_its_own_sku_and_slug_is_fine(admin_api, existing):
    response = admin_api.patch(
        f"{PRODUCTS}{existing.pk}/",
        {"sku": "TAKEN-1", "slug": "taken-slug", "name": "Renamed"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"


# --- Field validation ---------------------------------------------------------------------

BAD_FIELDS = [
    ("price", "-0.01"),
    ("price", "abc"),
    ("price", "NaN"),
    ("price", "Infinity"),
    ("price", "1.999"),
    ("price", "10000000000.00"),
    ("price", None),
    ("name", "n" * 201),
    ("name", ""),
    ("name", None),
    ("sku", "S" * 65),
    ("sku", "bad sku"),
    ("sku", "-starts-with-dash"),
    ("sku", "semi;colon"),
    ("sku", "ünïcode"),
    ("sku", ""),
    ("description", "d" * 10_001),
    ("slug", "Not a slug!"),
    ("currency", "eur"),
    ("currency", "EURO"),
    ("category", 999_999),
    ("category", "kitchen"),
    ("attributes", ["not", "an", "object"]),
    ("attributes", {"nested": {"no": "thanks"}}),
    ("attributes", {"long": "x" * 501}),
    ("attributes", {"nul": "a\x00b"}),
    ("attributes", {"a\x00b": "nul in the name"}),
    ("attributes", {f"a{n}": n for n in range(51)}),
    ("attributes", {"": "empty name"}),
    ("name", "   "),
    ("name", "a\x00b"),
    ("description", "a\x00b"),
]


@pytest.mark.parametrize(
    ("field", "value"), BAD_FIELDS, ids=[f"{f}={str(v)[:12]}" for f, v in BAD_FIELDS]
)
def test_bad_field_on_create_is_400_naming_the_field(admin_api, valid, field, value):
    with leaves_no_trace():
        response = admin_api.post(PRODUCTS, {**valid, field: value}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert field in body["errors"], body


@pytest.mark.parametrize(
    ("field", "value"), BAD_FIELDS, ids=[f"{f}={str(v)[:12]}" for f, v in BAD_FIELDS]
)
def test_bad_field_on_patch_is_400_and_the_row_is_unchanged(admin_api, make_product, field, value):
    product = make_product("draft")
    before = Product.objects.filter(pk=product.pk).values().get()

    with leaves_no_trace():
        response = admin_api.patch(f"{PRODUCTS}{product.pk}/", {field: value}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert field in body["errors"], body
    assert Product.objects.filter(pk=product.pk).values().get() == before


@pytest.mark.parametrize("missing", ["sku", "name", "price"])
def test_create_without_a_required_field_is_400(admin_api, valid, missing):
    del valid[missing]

    with leaves_no_trace():
        response = admin_api.post(PRODUCTS, valid, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == [missing]


def test_unknown_field_is_refused_by_name(admin_api, valid):
    with leaves_no_trace():
        response = admin_api.post(PRODUCTS, {**valid, "colour": "red", "stock": 3}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"colour", "stock"}
    assert "colour" in body["detail"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "published"),
        ("id", 77),
        ("published_at", "2024-01-01T00:00:00Z"),
        ("created_at", "2024-01-01T00:00:00Z"),
    ],
)
def test_read_only_field_in_body_is_refused(admin_api, valid, make_product, field, value):
    with leaves_no_trace():
        created = admin_api.post(PRODUCTS, {**valid, field: value}, format="json")
    body = assert_problem(created, 400, "validation_error")
    assert field in body["errors"]
    assert "read-only" in body["errors"][field][0]

    product = make_product("draft")
    with leaves_no_trace():
        patched = admin_api.patch(f"{PRODUCTS}{product.pk}/", {field: value}, format="json")
    assert field in assert_problem(patched, 400, "validation_error")["errors"]
    product.refresh_from_db()
    assert product.status == "draft"


# --- Bodies that are not a JSON object ---------------------------------------------------


@pytest.mark.parametrize(
    "raw", ['{"sku": "X-1", "name": ', "{'sku': 'single quotes'}", "not json at all", "\x00"]
)
def test_malformed_json_is_400_malformed_request(admin_api, make_product, raw):
    product = make_product("draft")

    with leaves_no_trace():
        created = admin_api.post(PRODUCTS, raw, content_type="application/json")
        patched = admin_api.patch(f"{PRODUCTS}{product.pk}/", raw, content_type="application/json")

    assert_problem(created, 400, "malformed_request")
    assert_problem(patched, 400, "malformed_request")


@pytest.mark.parametrize("raw", ["[]", '[{"sku": "X-1", "name": "x", "price": "1"}]', '"x"', "42"])
def test_a_body_that_is_not_an_object_is_400(admin_api, make_product, raw):
    product = make_product("draft")

    with leaves_no_trace():
        created = admin_api.post(PRODUCTS, raw, content_type="application/json")
        patched = admin_api.patch(f"{PRODUCTS}{product.pk}/", raw, content_type="application/json")

    assert_problem(created, 400)
    assert_problem(patched, 400)


@pytest.mark.parametrize(
    "raw",
    [
        '{"sku": "S-1", "name": "x", "price": "1", "attributes": {"a": "\\ud800"}}',
        '{"sku": "S-1", "name": "x", "price": "1", "attributes": {"\\udfff": "a"}}',
        '{"sku": "S-1", "name": "\\ud800", "price": "1"}',
    ],
    ids=["attribute-value", "attribute-name", "name"],
)
def test_unpaired_surrogates_are_400_not_500(admin_api, raw):
    with leaves_no_trace():
        response = admin_api.post(PRODUCTS, raw, content_type="application/json")

    assert_problem(response, 400, "validation_error")


def test_unknown_api_path_is_a_404_problem(admin_api):
    assert_problem(admin_api.get("/api/v1/no-such-thing/"), 404, "not_found")


def test_json_null_body_is_400(admin_api):
    with leaves_no_trace():
        response = admin_api.post(PRODUCTS, "null", content_type="application/json")

    assert_problem(response, 400)


def test_empty_create_body_is_400_naming_required_fields(admin_api):
    with leaves_no_trace():
        response = admin_api.post(PRODUCTS, "", content_type="application/json")

    body = assert_problem(response, 400)
    assert {"sku", "name", "price"} <= set(body.get("errors", {}))


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "text/csv"],
)
def test_wrong_content_type_is_415(admin_api, valid, content_type):
    with leaves_no_trace():
        response = admin_api.post(PRODUCTS, json.dumps(valid), content_type=content_type)

    body = assert_problem(response, 415, "unsupported_media_type")
    assert content_type in body["detail"]


def test_multipart_form_data_is_415(admin_api, valid, make_product):
    product = make_product("draft")

    with leaves_no_trace():
        created = admin_api.post(PRODUCTS, valid, format="multipart")
        patched = admin_api.patch(f"{PRODUCTS}{product.pk}/", {"name": "x"}, format="multipart")

    assert_problem(created, 415, "unsupported_media_type")
    assert_problem(patched, 415, "unsupported_media_type")


def test_json_with_charset_is_accepted(admin_api, valid):
    response = admin_api.post(
        PRODUCTS, json.dumps(valid), content_type="application/json; charset=utf-8"
    )

    assert response.status_code == 201


def test_validation_errors_name_every_bad_field_at_once(admin_api, valid):
    response = admin_api.post(
        PRODUCTS, {**valid, "price": "-1", "sku": "bad sku", "name": ""}, format="json"
    )

    body = assert_problem(response, 400, "validation_error")
    assert {"price", "sku", "name"} <= set(body["errors"])
    for messages in body["errors"].values():
        assert all(isinstance(m, str) and m for m in messages)
