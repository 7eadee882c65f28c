"""One write path per product (issue 12): the rules live in the catalog, so the API, the
admin, the services and the import refuse the same attributes and publish the same way;
an import is audited and announced as single writes are; events carry what the API shows."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest

from audit.models import AuditLog
from catalog.csv_columns import COLUMNS
from catalog.importing import ImportRejected, product_import
from catalog.models import Product
from catalog.payloads import category_payload, product_payload
from catalog.services import product_create, product_transition, product_update
from pms_backend.errors import InvalidInput
from pms_backend.events.models import Event

PRODUCTS = "/admin/catalog/product/"

BAD_ATTRIBUTES = {
    "not an object": [1, 2],
    "too many": {f"a{i}": i for i in range(51)},
    "empty name": {"": "x"},
    "long name": {"n" * 101: "x"},
    "nested": {"size": {"eu": 42}},
    "list value": {"sizes": ["S", "M"]},
    "long value": {"note": "x" * 501},
    "nul": {"note": "a\x00b"},
}


def _csv(**cells) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS)
    writer.writeheader()
    writer.writerow(dict.fromkeys(COLUMNS, "") | cells)
    return out.getvalue().encode()


@pytest.mark.parametrize("case", list(BAD_ATTRIBUTES))
def test_api_admin_service_and_import_refuse_the_same_attributes(
    case, admin_api, admin_client, system_actor, category
):
    attributes = BAD_ATTRIBUTES[case]
    body = {"sku": "ATTR-1", "name": "Mug", "price": "5.00", "attributes": attributes}

    api = admin_api.post("/api/v1/products/", body, format="json")
    assert api.status_code == 400 and "attributes" in api.json()["errors"]

    admin = admin_client.post(
        f"{PRODUCTS}add/",
        {
            "sku": "ATTR-1",
            "name": "Mug",
            "slug": "mug",
            "price": "5.00",
            "currency": "EUR",
            "category": category.pk,
            "attributes": json.dumps(attributes),
        },
    )
    assert admin.status_code == 200
    assert "attributes" in admin.context["adminform"].form.errors

    with pytest.raises(InvalidInput) as caught:
        product_create(
            actor=system_actor, sku="ATTR-1", name="Mug", price=Decimal(5), attributes=attributes
        )
    assert "attributes" in caught.value.errors

    with pytest.raises(ImportRejected) as rejected:
        product_import(
            actor=system_actor,
            source=io.BytesIO(
                _csv(sku="ATTR-1", name="Mug", price="5.00", attributes=json.dumps(attributes))
            ),
        )
    assert [e.column for e in rejected.value.report.errors] == ["attributes"]
    assert not Product.objects.filter(sku="ATTR-1").exists()


def test_the_update_service_refuses_attributes_the_api_refuses(make_product, system_actor):
    product = make_product()
    with pytest.raises(InvalidInput) as caught:
        product_update(
            actor=system_actor, product_id=product.pk, data={"attributes": {"a": {"b": 1}}}
        )
    assert caught.value.errors["attributes"] == [
        "Attribute 'a': values must be strings, numbers, booleans or null."
    ]


def _records(sku: str, since_audit: int, since_event: int) -> tuple[list, list]:
    product = Product.objects.get(sku=sku)
    entries = AuditLog.objects.filter(
        object_type="catalog.product", object_id=str(product.pk), id__gt=since_audit
    ).order_by("id")
    events = Event.objects.filter(subject=f"product:{product.pk}", id__gt=since_event).order_by(
        "id"
    )
    return (
        [
            (e.action, e.actor_label, sorted(e.changes), e.object_repr.split(" ", 1)[1])
            for e in entries
        ],
        [(e.type, e.topic, sorted(e.data), e.data["status"], e.data["price"]) for e in events],
    )


def _marks() -> tuple[int, int]:
    return (
        AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0,
        Event.objects.order_by("-id").values_list("id", flat=True).first() or 0,
    )


def test_an_imported_product_is_audited_and_announced_as_single_writes_are(system_actor, category):
    """Create + publish + update + archive, once through the services (as the API and the
    admin do), once by import: the same audit entries and events, step by step."""
    marks = _marks()
    single = product_create(
        actor=system_actor, sku="ONE-1", name="Mug", price=Decimal("5.00"), category=category
    )
    product_transition(actor=system_actor, product_id=single.pk, transition="publish")
    product_update(actor=system_actor, product_id=single.pk, data={"price": Decimal("6.00")})
    product_transition(actor=system_actor, product_id=single.pk, transition="archive")
    by_service = _records("ONE-1", *marks)

    marks = _marks()
    cells = {"name": "Mug", "category": "Kitchen", "status": "published"}
    product_import(actor=system_actor, source=io.BytesIO(_csv(sku="TWO-1", price="5.00", **cells)))
    cells["status"] = "archived"
    product_import(actor=system_actor, source=io.BytesIO(_csv(sku="TWO-1", price="6.00", **cells)))
    by_import = _records("TWO-1", *marks)

    assert by_import == by_service
    assert [action for action, *_ in by_import[0]] == [
        "product.created",
        "product.published",
        "product.updated",
        "product.archived",
    ]


def test_an_import_emits_one_event_per_product_and_step(system_actor, category, make_product):
    kept = make_product(sku="KEEP-1", name="Kept", price=Decimal("3.00"))
    rows = [
        {"sku": "NEW-1", "name": "A", "price": "1.00"},  # created
        {
            "sku": "NEW-2",
            "name": "B",
            "price": "1.00",
            "category": "Kitchen",
            "status": "published",
        },
        {"sku": "KEEP-1", "name": "Kept", "price": "4.00", "category": "Kitchen"},  # updated
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(dict.fromkeys(COLUMNS, "") | row)
    _audit, event = _marks()

    product_import(actor=system_actor, source=io.BytesIO(out.getvalue().encode()))

    events = Event.objects.filter(id__gt=event).order_by("id")
    assert sorted((e.type, e.data["sku"]) for e in events) == [
        ("product.created", "NEW-1"),
        ("product.created", "NEW-2"),
        ("product.published", "NEW-2"),
        ("product.updated", "KEEP-1"),
    ]
    kept.refresh_from_db()
    assert events.get(type="product.updated").data == json.loads(json.dumps(product_payload(kept)))


def test_event_payloads_are_what_the_api_returns(admin_api, make_product, system_actor):
    product = make_product(status="published", attributes={"size": "M", "eco": True})
    event = Event.objects.filter(type="product.published").latest("id")
    api = admin_api.get(f"/api/v1/products/{product.pk}/")
    assert json.dumps(event.data, sort_keys=True) == json.dumps(api.json(), sort_keys=True)
    assert list(api.json()) == list(product_payload(product))

    category = product.category
    api = admin_api.get(f"/api/v1/categories/{category.pk}/")
    assert json.loads(json.dumps(category_payload(category), default=str)) == api.json()


def test_the_product_field_list_is_written_once():
    """Every list of the product's fields is derived from catalog.fields."""
    from catalog.api.serializers import ProductSerializer, ProductWriteSerializer
    from catalog.csv_columns import PRODUCT_COLUMNS
    from catalog.fields import (
        BACKORDER_FIELDS,
        PRODUCT_EDITABLE_FIELDS,
        PRODUCT_REPRESENTATION_FIELDS,
    )
    from catalog.services import PRODUCT_FIELDS

    writable = [n for n, f in ProductWriteSerializer().fields.items() if not f.read_only]
    # A product without variants also takes its own backorder settings.
    assert writable == [*PRODUCT_EDITABLE_FIELDS, *BACKORDER_FIELDS]
    assert list(PRODUCT_EDITABLE_FIELDS) == PRODUCT_FIELDS
    assert list(ProductSerializer().fields) == list(PRODUCT_REPRESENTATION_FIELDS)
    assert list(ProductWriteSerializer().fields) == [
        *PRODUCT_EDITABLE_FIELDS,
        *BACKORDER_FIELDS,
        *(n for n in PRODUCT_REPRESENTATION_FIELDS if n not in PRODUCT_EDITABLE_FIELDS),
    ]
    assert set(PRODUCT_COLUMNS) == {*PRODUCT_EDITABLE_FIELDS, "status"}


def test_the_bulk_insert_of_demo_data_meets_the_same_rules(system_actor, category):
    from catalog.services import product_bulk_create

    unpublishable = Product(
        sku="BULK-1", name="Free", slug="free", price=Decimal(0), currency="EUR",
        category=category, status=Product.Status.PUBLISHED,
    )  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        product_bulk_create(actor=system_actor, products=[unpublishable])
    assert caught.value.code == "publish_requirements_unmet"

    odd = Product(sku="BULK-2", name="Odd", slug="odd", price=Decimal(1), currency="EUR",
                  attributes={"size": ["S"]})  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        product_bulk_create(actor=system_actor, products=[odd])
    assert "attributes" in caught.value.errors
    assert not Product.objects.filter(sku__startswith="BULK-").exists()


def test_only_the_transfer_services_write_transfers():
    """Transfers and their lines are written in inventory/transfers.py alone: the API and
    the admin call it (the admin's own save writes nothing)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    writes = re.compile(
        r"\b(Transfer|TransferLine)\.objects\.(create|bulk_create|bulk_update|update|"
        r"update_or_create|get_or_create)\b|\.lines\.(update|create)\b"
    )
    writers = sorted(
        str(path.relative_to(root))
        for path in root.glob("[!.]*/**/*.py")
        if "tests" not in path.parts and "migrations" not in path.parts
        if writes.search(path.read_text())
    )
    assert writers == ["inventory/transfers.py"]
