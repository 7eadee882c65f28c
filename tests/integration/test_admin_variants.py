"""Staff make and edit a product's variants in the admin: its options on its page, the
"Make variants" page (every combination or the ticked ones), the variants' rows edited in
place, their stock per location and receipts per variant. Every write goes through
catalog.variants (or the stock service), audited."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from audit.actors import Actor
from audit.models import AuditLog
from catalog.models import Product
from catalog.variants import product_set_options, variants_generate
from inventory.models import InventoryMovement, Location, StockLevel
from inventory.services import stock_record_movement
from tests.integration.test_admin_catalog import entries_for, messages_of, product_form

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/catalog/product/"
ACTOR = Actor.system("test")
SIZES_COLOURS = [
    {"name": "Size", "values": ["S", "M"]},
    {"name": "Colour", "values": ["Red", "Blue"]},
]


@pytest.fixture
def tee(make_product):
    return make_product(sku="TEE", name="Tee shirt", price=Decimal("15.00"))


@pytest.fixture
def tee_made(tee):
    """The tee with Size (S, M) and Colour (Red, Blue), its four variants made."""
    product_set_options(actor=ACTOR, product_id=tee.pk, options=SIZES_COLOURS)
    variants_generate(actor=ACTOR, product_id=tee.pk)
    return tee


def variants_of(product) -> dict[str, Product]:
    return {v.sku: v for v in Product.objects.filter(parent=product).order_by("pk")}


def page_form(product: Product, options: str | None = None, rows: dict | None = None) -> dict:
    """What the product's page posts: its fields, its options as text and each variant's
    row as it stands, ``rows`` (by SKU) changed or deleted (``{"DELETE": "on"}``)."""
    product.refresh_from_db()
    data = product_form(product)
    data["options"] = (
        options
        if options is not None
        else "\n".join(f"{o['name']}: {', '.join(o['values'])}" for o in product.options)
    )
    made = list(variants_of(product).values())
    data.update(
        {
            "variants-TOTAL_FORMS": str(len(made)),
            "variants-INITIAL_FORMS": str(len(made)),
            "variants-MIN_NUM_FORMS": "0",
            "variants-MAX_NUM_FORMS": "1000",
        }
    )
    for n, v in enumerate(made):
        row = {
            "id": str(v.pk),
            "parent": str(product.pk),
            "sku": v.sku,
            "barcode": v.barcode or "",
            "price": str(v.price),
            "weight_grams": "" if v.weight_grams is None else str(v.weight_grams),
        }
        if v.track_stock:
            row["track_stock"] = "on"
        row.update((rows or {}).get(v.sku, {}))
        data.update({f"variants-{n}-{name}": value for name, value in row.items()})
    return data


def save(admin_client, product, **kwargs):
    return admin_client.post(
        f"{PRODUCTS}{product.pk}/change/", page_form(product, **kwargs), follow=True
    )


def errors_of(response) -> str:
    html = response.content.decode()
    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", e) for e in found)


# --- Options ------------------------------------------------------------------------------


def test_options_written_a_line_each_are_saved_through_the_service_and_audited(admin_client, tee):
    response = save(admin_client, tee, options="Size: S, M, L\nColour:  Red ,Blue\n\n")

    assert response.status_code == 200
    tee.refresh_from_db()
    assert tee.options == [
        {"name": "Size", "values": ["S", "M", "L"]},
        {"name": "Colour", "values": ["Red", "Blue"]},
    ]
    entry = entries_for(tee, "product.updated").get()
    assert entry.changes["options"]["after"] == tee.options
    # The page shows them back as written, with the way to make the variants.
    html = admin_client.get(f"{PRODUCTS}{tee.pk}/change/").content.decode()
    assert "Size: S, M, L\nColour: Red, Blue" in html
    assert 'id="make-variants"' in html


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Size S, M", "Line 1: write an option as its name, a colon"),
        ("Size: S, M, s", "lists a value twice"),
        ("Size:", "needs 1 to 100 values"),
        ("A: 1\nB: 1\nC: 1\nD: 1", "At most 3 options"),
    ],
)
def test_options_the_catalog_does_not_keep_are_refused_on_the_field(admin_client, tee, text, said):
    response = admin_client.post(f"{PRODUCTS}{tee.pk}/change/", page_form(tee, options=text))

    assert response.status_code == 200  # the form again, with the error
    assert said in errors_of(response)
    tee.refresh_from_db()
    assert tee.options == []
    assert not entries_for(tee, "product.updated").exists()


def test_removing_a_value_a_variant_has_is_refused_and_nothing_is_saved(admin_client, tee_made):
    before = AuditLog.objects.count()

    response = save(admin_client, tee_made, options="Size: S\nColour: Red, Blue")

    assert any(
        "Variant TEE-M-" in m and "delete the variant first" in m for m in messages_of(response)
    )
    tee_made.refresh_from_db()
    assert tee_made.options == SIZES_COLOURS
    assert AuditLog.objects.count() == before


def test_options_and_a_field_of_a_new_product_are_saved_together(admin_client, category):
    response = admin_client.post(
        f"{PRODUCTS}add/",
        {
            "sku": "CAP",
            "name": "Cap",
            "slug": "cap",
            "description": "",
            "price": "9.00",
            "currency": "EUR",
            "category": str(category.pk),
            "attributes": "{}",
            "options": "Colour: Black, White",
        },
    )

    assert response.status_code == 302
    assert Product.objects.get(sku="CAP").options == [
        {"name": "Colour", "values": ["Black", "White"]}
    ]


# --- Making variants ----------------------------------------------------------------------


def test_the_make_page_lists_every_combination_with_those_made_marked(admin_client, tee):
    product_set_options(actor=ACTOR, product_id=tee.pk, options=SIZES_COLOURS)
    variants_generate(
        actor=ACTOR, product_id=tee.pk, combinations=[{"Size": "M", "Colour": "Blue"}]
    )

    html = admin_client.get(f"{PRODUCTS}{tee.pk}/variants/make/").content.decode()

    assert html.count('<tr class="to-make">') == 3
    assert html.count('<tr class="made">') == 1
    assert "made: TEE-M-BLUE" in html
    assert "4 combinations of the options;\n   3 not made yet" in html


def test_make_all_makes_every_combination_once_audited(admin_client, tee):
    product_set_options(actor=ACTOR, product_id=tee.pk, options=SIZES_COLOURS)
    url = f"{PRODUCTS}{tee.pk}/variants/make/"

    response = admin_client.post(url, {"_all": "Make all"}, follow=True)

    made = variants_of(tee)
    assert sorted(made) == ["TEE-M-BLUE", "TEE-M-RED", "TEE-S-BLUE", "TEE-S-RED"]
    assert all(v.price == Decimal("15.00") for v in made.values())
    assert made["TEE-S-RED"].option_values == {"Size": "S", "Colour": "Red"}
    assert any(m.startswith("Made 4 variants: TEE-S-RED") for m in messages_of(response))
    assert response.redirect_chain[-1][0] == f"{PRODUCTS}{tee.pk}/change/"
    assert AuditLog.objects.filter(action="variant.created").count() == 4

    again = admin_client.post(url, {"_all": "Make all"}, follow=True)

    assert len(variants_of(tee)) == 4
    assert "Those variants exist already." in messages_of(again)
    assert AuditLog.objects.filter(action="variant.created").count() == 4


def test_make_ticked_makes_only_the_ticked_combinations(admin_client, tee):
    product_set_options(actor=ACTOR, product_id=tee.pk, options=SIZES_COLOURS)
    url = f"{PRODUCTS}{tee.pk}/variants/make/"
    ticked = [
        json.dumps({"Size": "S", "Colour": "Blue"}),
        json.dumps({"Size": "M", "Colour": "Red"}),
    ]

    admin_client.post(url, {"_ticked": "Make ticked", "combination": ticked})
    admin_client.post(url, {"_ticked": "Make ticked", "combination": ticked[:1]})

    assert sorted(variants_of(tee)) == ["TEE-M-RED", "TEE-S-BLUE"]
    nothing = admin_client.post(url, {"_ticked": "Make ticked"}, follow=True)
    assert "Tick the combinations to make." in messages_of(nothing)
    assert len(variants_of(tee)) == 2


def test_a_ticked_value_the_product_does_not_declare_is_refused(admin_client, tee):
    product_set_options(actor=ACTOR, product_id=tee.pk, options=SIZES_COLOURS)

    response = admin_client.post(
        f"{PRODUCTS}{tee.pk}/variants/make/",
        {"_ticked": "1", "combination": [json.dumps({"Size": "XL", "Colour": "Red"})]},
    )

    assert response.status_code == 200
    assert any("'XL' is not a value of the option 'Size'" in m for m in messages_of(response))
    assert not variants_of(tee)


@pytest.mark.parametrize("combination", ["not json", "[" * 100_000, '{"Size": "S"'])
def test_a_ticked_combination_that_is_no_json_is_refused_with_nothing_made(
    admin_client, tee, combination
):
    product_set_options(actor=ACTOR, product_id=tee.pk, options=SIZES_COLOURS)

    response = admin_client.post(
        f"{PRODUCTS}{tee.pk}/variants/make/",
        {"_ticked": "1", "combination": [combination]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Tick the combinations to make." in messages_of(response)
    assert not variants_of(tee)


# --- The variants' rows -------------------------------------------------------------------


def test_a_rows_price_and_barcode_are_saved_through_the_service_and_audited(admin_client, tee_made):
    response = save(
        admin_client,
        tee_made,
        rows={"TEE-M-RED": {"price": "17.50", "barcode": "4006381333931", "weight_grams": "180"}},
    )

    assert response.status_code == 200
    red = variants_of(tee_made)["TEE-M-RED"]
    assert (red.price, red.barcode, red.weight_grams) == (Decimal("17.50"), "4006381333931", 180)
    entry = entries_for(red, "variant.updated").get()
    assert entry.changes["price"] == {"before": "15.00", "after": "17.50"}
    assert AuditLog.objects.filter(action="variant.updated").count() == 1  # the others: unchanged


def test_a_barcode_with_a_wrong_check_digit_is_refused_on_its_row_nothing_saved(
    admin_client, tee_made
):
    response = admin_client.post(
        f"{PRODUCTS}{tee_made.pk}/change/",
        page_form(
            tee_made,
            rows={
                "TEE-S-RED": {"price": "99.00"},
                "TEE-M-RED": {"barcode": "4006381333932"},
            },
        ),
    )

    assert response.status_code == 200
    assert "The check digit of 4006381333932 should be 1, not 2." in errors_of(response)
    made = variants_of(tee_made)
    assert made["TEE-S-RED"].price == Decimal("15.00")
    assert made["TEE-M-RED"].barcode is None
    assert not AuditLog.objects.filter(action="variant.updated").exists()


def test_a_sku_another_product_has_is_refused_on_its_row(admin_client, tee_made, make_product):
    make_product(sku="MUG")

    response = admin_client.post(
        f"{PRODUCTS}{tee_made.pk}/change/", page_form(tee_made, rows={"TEE-S-RED": {"sku": "MUG"}})
    )

    assert "already exists" in errors_of(response)
    assert "TEE-S-RED" in variants_of(tee_made)


def test_deleting_an_unstocked_variant_deletes_it_audited(admin_client, tee_made):
    blue = variants_of(tee_made)["TEE-S-BLUE"]

    save(admin_client, tee_made, rows={"TEE-S-BLUE": {"DELETE": "on"}})

    assert "TEE-S-BLUE" not in variants_of(tee_made)
    assert entries_for(blue, "variant.deleted").exists()


def test_deleting_a_stocked_variant_is_refused_and_nothing_is_saved(admin_client, tee_made):
    made = variants_of(tee_made)
    stock_record_movement(
        actor=ACTOR, product_id=made["TEE-S-RED"].pk, kind="receipt", quantity=3, reason="in"
    )

    response = admin_client.post(
        f"{PRODUCTS}{tee_made.pk}/change/",
        page_form(tee_made, rows={"TEE-S-RED": {"DELETE": "on"}, "TEE-M-RED": {"price": "20"}}),
    )

    assert response.status_code == 200  # the page again, the refusal on the row
    assert "Variant TEE-S-RED has stock, ledger lines or orders, which keep it" in errors_of(
        response
    )
    made = variants_of(tee_made)
    assert "TEE-S-RED" in made
    assert made["TEE-M-RED"].price == Decimal("15.00")  # the whole save was rolled back
    assert not AuditLog.objects.filter(action__in=["variant.deleted", "variant.updated"]).exists()


def test_a_variants_own_page_opens_its_product(admin_client, tee_made):
    red = variants_of(tee_made)["TEE-S-RED"]

    response = admin_client.get(f"{PRODUCTS}{red.pk}/change/")

    assert response.status_code == 302
    assert response["Location"] == f"{PRODUCTS}{tee_made.pk}/change/#variants-group"


# --- The list -----------------------------------------------------------------------------


def test_the_product_list_shows_products_with_their_variant_count_not_the_variants(
    admin_client, tee_made, make_product
):
    make_product(sku="MUG")

    response = admin_client.get(PRODUCTS)

    html = response.content.decode()
    assert sorted(p.sku for p in response.context["cl"].result_list) == ["MUG", "TEE"]
    assert "TEE-S-RED" not in html
    assert html.count('<span class="variant-count quiet">4 variants</span>') == 1
    searched = admin_client.get(PRODUCTS, {"q": "TEE"})
    assert [p.sku for p in searched.context["cl"].result_list] == ["TEE"]


# --- Stock per variant --------------------------------------------------------------------


def test_the_product_page_shows_each_variants_stock_per_location(admin_client, tee_made):
    store = Location.objects.create(code="store", name="City store", priority=200)
    red = variants_of(tee_made)["TEE-S-RED"]
    for quantity, at in ((3, Location.objects.get(code="main")), (5, store)):
        stock_record_movement(
            actor=ACTOR,
            product_id=red.pk,
            kind="receipt",
            quantity=quantity,
            reason="in",
            location=at,
        )

    html = admin_client.get(f"{PRODUCTS}{tee_made.pk}/change/").content.decode()

    assert "Over its variants: 8 on hand, 0 reserved, 8 available" in html
    row = re.search(r'<tr data-variant="TEE-S-RED">(.*?)</tr>', html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
    assert cells == ["3", "5", "8", "0", "8", "Receive / adjust"]
    listed = admin_client.get(PRODUCTS).content.decode()
    assert '8 on hand, 0 reserved over its variants">8<' in listed


def test_receiving_for_a_chosen_variant_at_a_chosen_location_moves_that_variants_stock(
    admin_client, tee_made
):
    store = Location.objects.create(code="store", name="City store", priority=200)
    blue = variants_of(tee_made)["TEE-M-BLUE"]
    url = f"{PRODUCTS}{tee_made.pk}/stock/"
    form = admin_client.get(url, {"variant": blue.pk}).content.decode()
    assert f'<option value="{blue.pk}" selected>TEE-M-BLUE (M / Blue)</option>' in form

    response = admin_client.post(
        url,
        {
            "variant": blue.pk,
            "location": store.pk,
            "kind": "receipt",
            "quantity": "6",
            "reason": "first delivery",
        },
        follow=True,
    )

    assert "TEE-M-BLUE: receipt of +6 recorded at City store; 6 on hand there." in messages_of(
        response
    )
    movement = InventoryMovement.objects.get()
    assert (movement.product_id, movement.location_id, movement.on_hand_delta) == (
        blue.pk,
        store.pk,
        6,
    )
    assert StockLevel.objects.get(product=blue, location=store).on_hand == 6
    assert not StockLevel.objects.filter(product=tee_made).exists()  # the product holds none
    assert AuditLog.objects.filter(action="stock.receipt", object_id=str(blue.pk)).exists()


def test_a_product_with_variants_needs_the_variant_named_to_move_stock(admin_client, tee_made):
    response = admin_client.post(
        f"{PRODUCTS}{tee_made.pk}/stock/", {"kind": "receipt", "quantity": "6", "reason": "x"}
    )

    assert response.status_code == 200
    assert "This field is required." in errors_of(response)
    assert not InventoryMovement.objects.exists()


def test_a_variants_stock_page_opens_its_products_with_the_variant_chosen(admin_client, tee_made):
    red = variants_of(tee_made)["TEE-S-RED"]

    response = admin_client.get(f"{PRODUCTS}{red.pk}/stock/")

    assert response["Location"] == f"{PRODUCTS}{tee_made.pk}/stock/?variant={red.pk}"


def test_a_transfers_product_search_offers_the_variants_not_their_product(
    admin_client, tee_made, make_product
):
    make_product(sku="TEA-CUP", name="Tea cup")

    found = admin_client.get(
        "/admin/autocomplete/",
        {
            "app_label": "inventory",
            "model_name": "transferline",
            "field_name": "product",
            "term": "te",
        },
    ).json()

    assert sorted(r["text"].split()[0] for r in found["results"]) == [
        "TEA-CUP",
        "TEE-M-BLUE",
        "TEE-M-RED",
        "TEE-S-BLUE",
        "TEE-S-RED",
    ]
