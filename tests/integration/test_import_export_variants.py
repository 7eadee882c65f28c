"""Products sold in variants, in and out as CSV: one row per variant, the product's
columns repeated on each (docs/import-export.md, "Variants").

What a shop relies on: a file without variants reads and writes as it always did; a
variant file goes in through the variant services' bulk path (options declared, variants
made and changed, each audited and announced, stock per variant through the ledger);
exporting and importing again changes nothing; a bad variant row is named by line and
column and nothing of the file is written.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from catalog.csv_columns import COLUMNS, VARIANT_COLUMNS
from catalog.exporting import export_csv
from catalog.importing import ImportRejected, product_import
from catalog.models import Category, Product
from catalog.services import category_create, product_transition
from catalog.variants import product_set_options, variants_generate
from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Stock, StockLevel
from pms_backend.events.models import Event

pytestmark = pytest.mark.django_db

HEADER = [*COLUMNS, *VARIANT_COLUMNS]


# --- helpers ------------------------------------------------------------------------------


def exported(queryset=None) -> bytes:
    return "".join(export_csv(queryset)).encode()


def import_bytes(actor, content: bytes, **kwargs):
    return product_import(actor=actor, source=io.BytesIO(content), file_name="v.csv", **kwargs)


def read(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode())))


def csv_bytes(rows: list[dict[str, str]], header=HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def variant_row(sku: str, size: str, colour: str = "", **cells) -> dict[str, str]:
    """A row of the variant ``sku`` of the new product TEE (Size, and Colour if given)."""
    base = {
        "sku": sku,
        "name": "Tee",
        "slug": "",
        "description": "A plain tee.",
        "price": "20.00",
        "currency": "EUR",
        "category": "Apparel",
        "status": "",
        "on_hand": "",
        "attributes": "",
        "product_sku": "TEE",
        "product_price": "",
        "option1_name": "Size",
        "option1_value": size,
        "option2_name": "Colour" if colour else "",
        "option2_value": colour,
        "option3_name": "",
        "option3_value": "",
        "barcode": "",
        "weight_grams": "",
        "track_stock": "",
    }
    return base | cells


def counts() -> dict[str, int]:
    return {
        "products": Product.objects.count(),
        "movements": InventoryMovement.objects.count(),
        "audit": AuditLog.objects.count(),
        "events": Event.objects.count(),
    }


def state() -> list[tuple]:
    return list(
        Product.objects.order_by("sku").values_list(
            "sku",
            "parent__sku",
            "name",
            "price",
            "status",
            "options",
            "option_values",
            "barcode",
            "weight_grams",
            "track_stock",
            "updated_at",
            "stock__on_hand",
        )
    )


@pytest.fixture
def apparel(system_actor):
    return category_create(actor=system_actor, name="Apparel")


@pytest.fixture
def shop(apparel, make_product, receive, system_actor):
    """A plain product with stock, and a published shirt sold in 2 sizes x 2 colours."""
    mug = make_product("published", sku="MUG-1", name="Mug", category=apparel)
    receive(mug, 7)
    shirt = make_product("draft", sku="SHIRT", name="Oxford shirt", category=apparel)
    product_set_options(
        actor=system_actor,
        product_id=shirt.pk,
        options=[
            {"name": "Size", "values": ["S", "M"]},
            {"name": "Colour", "values": ["Red", "Blue"]},
        ],
    )
    variants = variants_generate(actor=system_actor, product_id=shirt.pk)
    product_transition(actor=system_actor, product_id=shirt.pk, transition="publish")
    for variant, units in zip(variants, (3, 0, 5, 1), strict=True):
        if units:
            receive(variant, units)
    return {"mug": mug, "shirt": shirt, "variants": {v.sku: v for v in variants}}


# --- export -------------------------------------------------------------------------------


def test_a_shop_without_variants_exports_exactly_the_file_it_always_did(
    apparel, make_product, receive
):
    mug = make_product(
        "published",
        sku="MUG-1",
        name="Mug",
        category=apparel,
        price=Decimal("9.5"),
        attributes={"b": 1, "a": "x"},
    )
    make_product("draft", sku="CUP-1", name="=Cup", category=None, description="two\nlines")
    receive(mug, 4)

    assert (
        exported()
        == (
            "sku,name,slug,description,price,currency,category,status,on_hand,attributes\r\n"
            f"MUG-1,Mug,{mug.slug},,9.50,EUR,Apparel,published,4,"
            '"{""a"": ""x"", ""b"": 1}"\r\n'
            f'CUP-1,\'=Cup,{Product.objects.get(sku="CUP-1").slug},"two\nlines",19.90,EUR,,'
            "draft,0,\r\n"
        ).encode()
    )


def test_a_product_with_variants_is_one_row_per_variant_with_its_columns_repeated(shop):
    rows = read(exported())

    assert list(rows[0]) == HEADER
    assert [r["sku"] for r in rows] == [
        "MUG-1",
        "SHIRT-S-RED",
        "SHIRT-S-BLUE",
        "SHIRT-M-RED",
        "SHIRT-M-BLUE",
    ]
    mug, *shirts = rows
    assert [mug[c] for c in VARIANT_COLUMNS] == [""] * len(VARIANT_COLUMNS)
    assert mug["on_hand"] == "7"
    for r in shirts:  # the product's columns, repeated
        assert (r["name"], r["status"], r["category"], r["product_sku"], r["product_price"]) == (
            "Oxford shirt",
            "published",
            "Apparel",
            "SHIRT",
            "19.90",
        )
        assert (r["option1_name"], r["option2_name"], r["option3_name"]) == ("Size", "Colour", "")
        assert r["track_stock"] == "true"
    assert [(r["option1_value"], r["option2_value"], r["on_hand"]) for r in shirts] == [
        ("S", "Red", "3"),
        ("S", "Blue", "0"),
        ("M", "Red", "5"),
        ("M", "Blue", "1"),
    ]


# --- round trip ---------------------------------------------------------------------------


def test_export_then_import_changes_nothing(shop, system_actor, tmp_path):
    out = io.StringIO()
    call_command("export_products", str(tmp_path / "v.csv"), "--no-progress", stdout=out)
    assert "Exported 5 rows" in out.getvalue()
    content = exported()
    assert (tmp_path / "v.csv").read_bytes() == content
    before, values = counts(), state()

    report = import_bytes(system_actor, content)

    assert (report.created, report.updated, report.extra_only, report.unchanged) == (0, 0, 0, 5)
    assert counts() == before  # no audit entry, no movement, no event
    assert state() == values  # not even updated_at
    assert exported() == content


def test_a_variant_file_imported_into_an_empty_shop_exports_as_it_was(apparel, system_actor):
    rows = [
        variant_row("TEE-S-W", "S", "White", on_hand="4", barcode="4006381333931"),
        variant_row("TEE-M-W", "M", "White", price="21.50", weight_grams="180"),
        variant_row("TEE-M-B", "M", "Black", on_hand="2", track_stock="false"),
    ]
    rows = [r | {"product_price": "20.00", "status": "published"} for r in rows]
    plain = {name: "" for name in HEADER} | {
        "sku": "MUG-1",
        "name": "Mug",
        "slug": "mug",
        "price": "9.00",
        "currency": "EUR",
        "status": "draft",
        "on_hand": "5",
    }
    content = csv_bytes([*rows, plain])

    import_bytes(system_actor, content)
    again = exported()

    tee = Product.objects.get(sku="TEE")
    assert read(again) == [
        *(
            r
            | {
                "slug": tee.slug,
                "on_hand": r["on_hand"] or "0",
                "track_stock": r["track_stock"] or "true",
            }
            for r in rows
        ),
        plain,
    ]
    assert import_bytes(system_actor, again).unchanged == 4


# --- import -------------------------------------------------------------------------------


def test_import_makes_the_product_its_options_variants_and_their_stock(apparel, system_actor):
    rows = [
        variant_row("TEE-S-W", "S", "White", on_hand="4", barcode="4006381333931"),
        variant_row("TEE-M-W", "M", "White", price="22.00", weight_grams="180"),
        variant_row("TEE-M-B", "M", "Black", on_hand="6"),
    ]
    report = import_bytes(system_actor, csv_bytes([r | {"status": "published"} for r in rows]))

    assert (report.created, report.updated) == (3, 0)
    tee = Product.objects.get(sku="TEE")
    assert tee.parent_id is None and tee.status == "published"
    assert tee.price == Decimal("20.00")  # no product_price: its cheapest variant's
    assert tee.options == [
        {"name": "Size", "values": ["S", "M"]},
        {"name": "Colour", "values": ["White", "Black"]},
    ]
    variants = {v.sku: v for v in tee.variants.all()}
    assert set(variants) == {"TEE-S-W", "TEE-M-W", "TEE-M-B"}
    assert variants["TEE-S-W"].barcode == "4006381333931"
    assert variants["TEE-M-W"].price == Decimal("22.00")
    assert variants["TEE-M-W"].weight_grams == 180
    assert variants["TEE-M-B"].option_values == {"Size": "M", "Colour": "Black"}
    assert variants["TEE-M-B"].name == "Tee (M / Black)"
    assert {v.status for v in variants.values()} == {"published"}  # they follow the product
    # Stock per variant, received through the ledger; the product holds none of its own.
    assert dict(Stock.objects.values_list("product__sku", "on_hand")) == {
        "TEE-S-W": 4,
        "TEE-M-B": 6,
    }
    assert set(InventoryMovement.objects.values_list("kind", flat=True)) == {"receipt"}
    assert inventory_drift() == []
    # Each variant audited and announced as variant_create would.
    assert AuditLog.objects.filter(action="variant.created").count() == 3
    created = Event.objects.filter(type="variant.created")
    assert sorted(e.data["sku"] for e in created) == ["TEE-M-B", "TEE-M-W", "TEE-S-W"]


def test_import_changes_variants_adds_values_and_moves_stock(shop, system_actor):
    rows = read(exported())
    shirts = [r for r in rows if r["product_sku"] == "SHIRT"]
    shirts[0]["price"] = "24.00"  # SHIRT-S-RED
    shirts[1]["barcode"] = "4006381333931"  # SHIRT-S-BLUE
    shirts[2]["on_hand"] = "9"  # SHIRT-M-RED: 5 -> 9
    new = dict(shirts[0]) | {"sku": "SHIRT-L-RED", "option1_value": "L", "on_hand": "2"}
    before = AuditLog.objects.count()

    report = import_bytes(system_actor, csv_bytes([*rows, new]))

    assert (report.created, report.updated, report.extra_only, report.unchanged) == (1, 2, 1, 2)
    shirt = Product.objects.get(sku="SHIRT")
    assert shirt.options[0] == {"name": "Size", "values": ["S", "M", "L"]}
    variants = {v.sku: v for v in shirt.variants.all()}
    assert variants["SHIRT-S-RED"].price == Decimal("24.00")
    assert variants["SHIRT-S-BLUE"].barcode == "4006381333931"
    assert variants["SHIRT-L-RED"].status == "published"
    assert Stock.objects.get(product__sku="SHIRT-M-RED").on_hand == 9
    assert Stock.objects.get(product__sku="SHIRT-L-RED").on_hand == 2
    actions = list(AuditLog.objects.order_by("pk")[before:].values_list("action", flat=True))
    assert actions.count("variant.updated") == 2
    assert actions.count("variant.created") == 1
    assert "product.updated" in actions  # the new value of Size
    assert inventory_drift() == []


def test_a_status_change_moves_the_variants_with_their_product(shop, system_actor):
    rows = read(exported())
    for r in rows:
        if r["product_sku"] == "SHIRT":
            r["status"] = "archived"

    import_bytes(system_actor, csv_bytes(rows))

    statuses = set(Product.objects.filter(parent__sku="SHIRT").values_list("status", flat=True))
    assert statuses == {"archived"}


def test_a_file_without_the_variant_columns_still_updates_plain_products(shop, system_actor):
    content = csv_bytes(
        [
            {
                "sku": "MUG-1",
                "name": "Big mug",
                "price": "19.90",
                "category": "Apparel",
                "on_hand": "7",
            }
        ],
        header=COLUMNS,
    )

    report = import_bytes(system_actor, content)

    assert report.updated == 1
    assert Product.objects.get(sku="MUG-1").name == "Big mug"


def test_a_large_product_is_never_split_between_batches(apparel, system_actor, monkeypatch):
    monkeypatch.setattr("catalog.importing.BATCH_SIZE", 2)
    rows = [variant_row(f"TEE-{s}", s) for s in ("XS", "S", "M", "L", "XL")]
    rows.append(variant_row("CAP-1", "One", product_sku="CAP", name="Cap"))

    report = import_bytes(system_actor, csv_bytes(rows))

    assert report.created == 6
    assert Product.objects.get(sku="TEE").options == [
        {"name": "Size", "values": ["XS", "S", "M", "L", "XL"]}
    ]
    assert Product.objects.filter(parent__sku="TEE").count() == 5


# --- bad rows -----------------------------------------------------------------------------


def _refused(actor, rows) -> list[str]:
    before = counts()
    with pytest.raises(ImportRejected) as caught:
        import_bytes(actor, csv_bytes(rows))
    assert counts() == before  # nothing half-written
    return [str(error) for error in caught.value.report.errors]


def test_a_row_naming_other_options_than_its_product_declares_is_refused(shop, system_actor):
    rows = [r for r in read(exported()) if r["product_sku"] == "SHIRT"]
    rows[0] |= {"sku": "SHIRT-NEW", "option2_name": "Material", "option2_value": "Silk"}
    for r in rows[1:]:
        r |= {"option2_name": "Material"}

    errors = _refused(system_actor, rows)

    assert errors[0] == (
        "line 2, option1_name: Product SHIRT declares the options Size, Colour; this row "
        "names Size, Material."
    )


def test_a_combination_given_twice_or_taken_is_refused(shop, system_actor):
    rows = [variant_row("TEE-1", "S"), variant_row("TEE-2", "S")]
    assert _refused(system_actor, rows) == [
        "line 3, option1_value: Size: S is also the variant of line 2."
    ]

    shirt = dict(next(r for r in read(exported()) if r["sku"] == "SHIRT-S-RED"))
    shirt["sku"] = "SHIRT-OTHER"
    assert _refused(system_actor, [shirt]) == [
        "line 2, option1_value: Product SHIRT already has the variant Size: S, Colour: Red "
        "(SHIRT-S-RED)."
    ]


def test_a_barcode_with_a_wrong_check_digit_is_refused(apparel, system_actor):
    errors = _refused(system_actor, [variant_row("TEE-S", "S", barcode="4006381333932")])

    assert errors == ["line 2, barcode: The check digit of 4006381333932 should be 1, not 2."]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [variant_row("TEE-S", "S"), variant_row("TEE-M", "M", name="Other tee")],
            "line 3, name: Differs from line 2 (name): a product's columns are the same on "
            "each of its variants' rows.",
        ),
        (
            [
                variant_row("TEE-S", "S"),
                variant_row("CAP", "One", product_sku="CAP"),
                variant_row("TEE-M", "M"),
            ],
            "line 4, product_sku: The rows of product TEE must follow each other (they begin "
            "on line 2).",
        ),
        (
            [variant_row("TEE-S", "S", option1_name="")],
            "line 2, option1_name: An option has a name and a value.",
        ),
        (
            [variant_row("TEE-S", "S", weight_grams="1.5")],
            "line 2, weight_grams: A whole number of grams from 0 to 1,000,000,000.",
        ),
        (
            [
                variant_row(
                    "TEE-S",
                    "S",
                    product_sku="",
                    option1_name="",
                    option1_value="",
                    barcode="4006381333931",
                )
            ],
            "line 2, barcode: Only a variant's row (one with a product_sku) has this column.",
        ),
        (
            [
                variant_row("TEE-S", "S", barcode="4006381333931"),
                variant_row("TEE-M", "M", barcode="4006381333931"),
            ],
            "line 3, barcode: The barcode 4006381333931 is also on line 2.",
        ),
        (
            [variant_row("TEE", "S")],
            "line 2, product_sku: A variant's SKU is not its product's (give each its own).",
        ),
    ],
    ids=[
        "product-columns-differ",
        "rows-apart",
        "half-option",
        "weight",
        "plain-barcode",
        "barcode-twice",
        "own-sku",
    ],
)
def test_bad_variant_rows_are_refused_by_line_and_column(apparel, system_actor, rows, expected):
    assert expected in _refused(system_actor, rows)


def test_a_variant_row_for_another_products_sku_is_refused(shop, system_actor):
    errors = _refused(system_actor, [variant_row("MUG-1", "S")])
    assert errors == ["line 2, sku: MUG-1 is a product of its own, not a variant of TEE."]

    errors = _refused(system_actor, [variant_row("SHIRT-S-RED", "S")])
    assert errors == ["line 2, sku: SHIRT-S-RED is a variant of another product, SHIRT."]


def test_a_plain_row_cannot_give_stock_to_a_product_sold_in_variants(shop, system_actor):
    rows = [
        {
            "sku": "SHIRT",
            "name": "Oxford shirt",
            "price": "19.90",
            "category": "Apparel",
            "on_hand": "5",
        },
        {"sku": "SHIRT-S-RED", "name": "Oxford shirt", "price": "19.90", "category": "Apparel"},
    ]
    errors = _refused(system_actor, rows)

    assert errors == [
        "line 2, on_hand: Product SHIRT is sold in variants: this is its variants' (give one "
        "row per variant, with product_sku SHIRT).",
        "line 3, sku: SHIRT-S-RED is a variant of product SHIRT: give it on a row of its "
        "variants (product_sku SHIRT).",
    ]


def test_a_bad_row_among_good_ones_writes_nothing(apparel, system_actor):
    rows = [
        variant_row("TEE-S", "S", on_hand="3"),
        variant_row("TEE-M", "M", on_hand="3"),
        variant_row("TEE-L", "L", barcode="123"),
    ]
    errors = _refused(system_actor, rows)

    assert errors == [
        "line 4, barcode: A barcode is 8, 12, 13 or 14 digits (GTIN-8, UPC-A, EAN-13, GTIN-14)."
    ]
    assert not Category.objects.filter(name="Tee").exists()
    assert not StockLevel.objects.exists()


def test_queries_do_not_grow_with_the_products_or_their_variants(apparel, system_actor):
    def import_queries(products: int, prefix: str, on_hand: str = "3") -> int:
        rows = [
            variant_row(f"{prefix}{p}-{s}", s, product_sku=f"{prefix}{p}", on_hand=on_hand)
            for p in range(products)
            for s in ("S", "M", "L")
        ]
        with CaptureQueriesContext(connection) as queries:
            import_bytes(system_actor, csv_bytes(rows))
        return len(queries)

    small, large = import_queries(2, "A"), import_queries(100, "B")
    assert Product.objects.filter(parent__isnull=False).count() == 306
    # In batches, never a query per product or per variant.
    assert large - small < 30, (small, large)
    # And again, changing every variant's stock: the same.
    again = import_queries(100, "B", on_hand="5")
    assert again < large, (again, large)


# --- the admin ----------------------------------------------------------------------------


def test_the_admin_previews_variant_rows_and_exports_them(shop, admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    rows = read(exported())
    rows[1]["price"] = "24.00"  # SHIRT-S-RED
    upload = SimpleUploadedFile("v.csv", csv_bytes(rows), "text/csv")

    preview = admin_client.post(
        "/admin/catalog/product/import/", {"import_file": upload, "format": "0"}
    )

    page = preview.content.decode()
    assert "would make 0 new, 1 updated" in page
    assert "<del>19.90</del> <ins>24.00</ins>" in page
    assert "option1_value" in page and "SHIRT-S-RED" in page
    exported_by_admin = admin_client.post(
        "/admin/catalog/product/export/", {"format": "0", "resource": "0"}
    )
    assert b"".join(exported_by_admin.streaming_content) == exported()
