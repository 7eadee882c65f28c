"""Variants: a product's options and the child products that sell each combination
(catalog/variants.py), their status following the product's, and orders naming them."""

from decimal import Decimal

import pytest

from audit.actors import Actor
from audit.models import AuditLog
from catalog import services as catalog
from catalog import variants
from catalog.models import Product, gtin_problem
from inventory.models import Stock
from inventory.services import stock_record_movement
from orders.models import OrderItem
from orders.services import order_place
from pms_backend.errors import Conflict, InvalidInput, NotFound
from pms_backend.events.models import Event

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
SIZE_COLOUR = [
    {"name": "Size", "values": ["S", "M", "L"]},
    {"name": "Colour", "values": ["Red", "Blue"]},
]
CUSTOMER = {"email": "ada@example.com", "name": "Ada"}
ADDRESS = {"line1": "1 Way", "city": "London", "postal_code": "N1", "country": "GB"}


@pytest.fixture
def shirt(category):
    product = catalog.product_create(
        actor=ACTOR, sku="SHIRT", name="Shirt", price=Decimal("20.00"), category=category
    )
    return variants.product_set_options(actor=ACTOR, product_id=product.pk, options=SIZE_COLOUR)


@pytest.fixture
def category():
    return catalog.category_create(actor=ACTOR, name="Tops", slug="tops")


def test_every_combination_is_made_in_one_step_and_once(shirt):
    made = variants.variants_generate(actor=ACTOR, product_id=shirt.pk)

    assert len(made) == 6
    assert sorted(v.sku for v in made) == sorted(
        f"SHIRT-{s}-{c}" for s in ("S", "M", "L") for c in ("RED", "BLUE")
    )
    first = Product.objects.get(sku="SHIRT-S-RED")
    assert first.parent == shirt
    assert first.option_values == {"Size": "S", "Colour": "Red"}
    assert first.name == "Shirt (S / Red)"
    assert (first.price, first.currency, first.status) == (Decimal("20.00"), "EUR", "draft")
    # A second run makes nothing new.
    assert variants.variants_generate(actor=ACTOR, product_id=shirt.pk) == []
    assert shirt.variants.count() == 6
    assert AuditLog.objects.filter(action="variant.created").count() == 6
    assert Event.objects.filter(type="variant.created").count() == 6


def test_only_the_ticked_combinations_are_made(shirt):
    made = variants.variants_generate(
        actor=ACTOR,
        product_id=shirt.pk,
        combinations=[{"Size": "M", "Colour": "Blue"}, {"Colour": "Red", "Size": "L"}],
    )
    assert sorted(v.options_key for v in made) == ["Colour=Blue|Size=M", "Colour=Red|Size=L"]


def test_a_variant_with_its_own_sku_price_and_barcode(shirt):
    variant = variants.variant_create(
        actor=ACTOR,
        product_id=shirt.pk,
        options={"Colour": "Red", "Size": "M"},
        sku="SHIRT-M-R",
        price=Decimal("22.50"),
        barcode="4006381333931",
        weight_grams=180,
    )
    assert variant.option_values == {"Size": "M", "Colour": "Red"}  # the product's order
    assert (variant.price, variant.barcode, variant.weight_grams) == (
        Decimal("22.50"),
        "4006381333931",
        180,
    )


@pytest.mark.parametrize(
    ("options", "sku", "barcode", "code"),
    [
        ({"Size": "M"}, "X-1", None, "invalid_variant"),  # Colour missing
        ({"Size": "M", "Colour": "Green"}, "X-2", None, "invalid_variant"),  # not declared
        ({"Size": "M", "Colour": "Red", "Fit": "Slim"}, "X-3", None, "invalid_variant"),
        ({"Size": "M", "Colour": "Red"}, "X-4", "4006381333932", "invalid_barcode"),
        ({"Size": "M", "Colour": "Red"}, "X 5", None, "invalid_variant"),  # SKU
    ],
)
def test_bad_variants_are_refused_and_nothing_is_written(shirt, options, sku, barcode, code):
    with pytest.raises(InvalidInput) as refused:
        variants.variant_create(
            actor=ACTOR, product_id=shirt.pk, options=options, sku=sku, barcode=barcode
        )
    assert refused.value.code == code
    assert not shirt.variants.exists()


def test_the_same_options_sku_or_barcode_twice_is_a_conflict(shirt):
    variants.variant_create(
        actor=ACTOR,
        product_id=shirt.pk,
        options={"Size": "S", "Colour": "Red"},
        sku="A-1",
        barcode="4006381333931",
    )
    for kwargs, code in [
        ({"options": {"Size": "S", "Colour": "Red"}, "sku": "A-2"}, "duplicate_variant"),
        ({"options": {"Size": "M", "Colour": "Red"}, "sku": "A-1"}, "duplicate_sku"),
        ({"options": {"Size": "M", "Colour": "Red"}, "sku": "SHIRT"}, "duplicate_sku"),
        (
            {"options": {"Size": "M", "Colour": "Red"}, "sku": "A-3", "barcode": "4006381333931"},
            "duplicate_barcode",
        ),
    ]:
        with pytest.raises(Conflict) as refused:
            variants.variant_create(actor=ACTOR, product_id=shirt.pk, **kwargs)
        assert refused.value.code == code
    assert shirt.variants.count() == 1


def test_check_digits_of_every_gtin_length():
    assert gtin_problem("96385074") == ""  # GTIN-8
    assert gtin_problem("036000291452") == ""  # UPC-A
    assert gtin_problem("4006381333931") == ""  # EAN-13
    assert gtin_problem("10012345678902") == ""  # GTIN-14
    assert "check digit" in gtin_problem("036000291453")
    assert "8, 12, 13 or 14 digits" in gtin_problem("12345")
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in "4006381333931")
    assert "8, 12, 13 or 14 digits" in gtin_problem(fullwidth)


def test_options_keep_every_value_a_variant_uses(shirt):
    variants.variants_generate(
        actor=ACTOR, product_id=shirt.pk, combinations=[{"Size": "S", "Colour": "Red"}]
    )
    with pytest.raises(Conflict) as refused:
        variants.product_set_options(
            actor=ACTOR,
            product_id=shirt.pk,
            options=[{"name": "Size", "values": ["M", "L"]}, SIZE_COLOUR[1]],
        )
    assert refused.value.code == "option_in_use"
    # Adding a value is free.
    grown = [{"name": "Size", "values": ["S", "M", "L", "XL"]}, SIZE_COLOUR[1]]
    assert (
        variants.product_set_options(actor=ACTOR, product_id=shirt.pk, options=grown).options
        == grown
    )


@pytest.mark.parametrize(
    "options",
    [
        "Size",
        [{"name": "Size"}],
        [{"name": "Size", "values": []}],
        [{"name": "Size", "values": ["S", "s"]}],
        [{"name": "Size", "values": ["S"]}, {"name": "size", "values": ["M"]}],
        [{"name": f"O{i}", "values": ["a"]} for i in range(4)],
    ],
)
def test_malformed_options_are_refused(shirt, options):
    with pytest.raises(InvalidInput) as refused:
        variants.product_set_options(actor=ACTOR, product_id=shirt.pk, options=options)
    assert refused.value.code == "invalid_options"


def test_variants_are_one_level_deep(shirt):
    (variant,) = variants.variants_generate(
        actor=ACTOR, product_id=shirt.pk, combinations=[{"Size": "S", "Colour": "Red"}]
    )
    with pytest.raises(InvalidInput):
        variants.product_set_options(actor=ACTOR, product_id=variant.pk, options=SIZE_COLOUR)


def test_variants_follow_the_products_status_and_cannot_move_alone(shirt):
    with pytest.raises(InvalidInput) as refused:
        catalog.product_transition(actor=ACTOR, product_id=shirt.pk, transition="publish")
    assert "make them first" in refused.value.detail

    made = variants.variants_generate(actor=ACTOR, product_id=shirt.pk)
    catalog.product_transition(actor=ACTOR, product_id=shirt.pk, transition="publish")
    assert set(shirt.variants.values_list("status", flat=True)) == {"published"}
    with pytest.raises(Conflict) as refused:
        catalog.product_transition(actor=ACTOR, product_id=made[0].pk, transition="archive")
    assert refused.value.code == "variant_follows_product"

    catalog.product_transition(actor=ACTOR, product_id=shirt.pk, transition="archive")
    assert set(shirt.variants.values_list("status", flat=True)) == {"archived"}


def test_a_variant_update_and_delete(shirt):
    variant, other = variants.variants_generate(
        actor=ACTOR,
        product_id=shirt.pk,
        combinations=[{"Size": "S", "Colour": "Red"}, {"Size": "M", "Colour": "Red"}],
    )
    variants.variant_update(
        actor=ACTOR,
        variant_id=variant.pk,
        data={"price": Decimal("25.00"), "options": {"Size": "L", "Colour": "Blue"}},
    )
    variant.refresh_from_db()
    assert (variant.price, variant.name) == (Decimal("25.00"), "Shirt (L / Blue)")
    with pytest.raises(Conflict):
        variants.variant_update(
            actor=ACTOR, variant_id=variant.pk, data={"options": {"Size": "M", "Colour": "Red"}}
        )
    variants.variant_delete(actor=ACTOR, variant_id=other.pk)
    assert not Product.objects.filter(pk=other.pk).exists()
    assert Event.objects.filter(type="variant.deleted", data__deleted=True).count() == 1
    with pytest.raises(NotFound):
        variants.variant_delete(actor=ACTOR, variant_id=shirt.pk)  # a product, not a variant


def _published_with_stock(shirt, stocked: dict[tuple[str, str], int]):
    variants.variants_generate(actor=ACTOR, product_id=shirt.pk)
    catalog.product_transition(actor=ACTOR, product_id=shirt.pk, transition="publish")
    found = {}
    for (size, colour), units in stocked.items():
        variant = shirt.variants.get(option_values={"Size": size, "Colour": colour})
        stock_record_movement(
            actor=ACTOR, product_id=variant.pk, kind="receipt", quantity=units, reason=""
        )
        found[(size, colour)] = variant
    return found


def test_an_order_reserves_the_variants_stock(shirt):
    stocked = _published_with_stock(shirt, {("M", "Red"): 5, ("L", "Blue"): 2})
    red = stocked[("M", "Red")]

    order = order_place(
        actor=ACTOR,
        items=[{"variant": red.pk, "quantity": 3}],
        customer=CUSTOMER,
        shipping_address=ADDRESS,
    )
    (item,) = OrderItem.objects.filter(order=order)
    assert (item.product_id, item.sku, item.name) == (red.pk, red.sku, "Shirt (M / Red)")
    assert Stock.objects.get(product=red).reserved == 3
    assert not Stock.objects.filter(product=shirt).exists()

    with pytest.raises(Conflict) as refused:  # more than that variant holds
        order_place(
            actor=ACTOR,
            items=[{"variant": stocked[("L", "Blue")].pk, "quantity": 3}],
            customer=CUSTOMER,
            shipping_address=ADDRESS,
        )
    assert refused.value.code == "insufficient_stock"


def test_naming_a_product_of_several_variants_is_refused_with_their_list(shirt):
    _published_with_stock(shirt, {("M", "Red"): 5})
    for key in ("product", "variant"):
        with pytest.raises(InvalidInput) as refused:
            order_place(
                actor=ACTOR,
                items=[{key: shirt.pk, "quantity": 1}],
                customer=CUSTOMER,
                shipping_address=ADDRESS,
            )
        assert refused.value.code == "variant_required"
        (line,) = refused.value.extra["lines"]
        assert line["product"] == shirt.pk
        assert len(line["variants"]) == 6


def test_a_product_with_one_variant_is_ordered_as_v1_did(category):
    mug = catalog.product_create(
        actor=ACTOR, sku="MUG", name="Mug", price=Decimal("8.00"), category=category
    )
    variants.product_set_options(
        actor=ACTOR, product_id=mug.pk, options=[{"name": "Colour", "values": ["White"]}]
    )
    (white,) = variants.variants_generate(actor=ACTOR, product_id=mug.pk)
    catalog.product_transition(actor=ACTOR, product_id=mug.pk, transition="publish")
    stock_record_movement(actor=ACTOR, product_id=white.pk, kind="receipt", quantity=4, reason="")

    order = order_place(
        actor=ACTOR,
        items=[{"product": mug.pk, "quantity": 2}],
        customer=CUSTOMER,
        shipping_address=ADDRESS,
    )
    assert OrderItem.objects.get(order=order).product_id == white.pk
    assert Stock.objects.get(product=white).reserved == 2


def test_a_variant_of_an_unpublished_product_cannot_be_ordered(shirt):
    stocked = _published_with_stock(shirt, {("S", "Red"): 5})
    catalog.product_transition(actor=ACTOR, product_id=shirt.pk, transition="unpublish")
    with pytest.raises(Conflict) as refused:
        order_place(
            actor=ACTOR,
            items=[{"variant": stocked[("S", "Red")].pk, "quantity": 1}],
            customer=CUSTOMER,
            shipping_address=ADDRESS,
        )
    assert refused.value.code == "product_unavailable"


def test_the_lists_show_products_not_variants(shirt):
    from catalog.selectors import product_list, variant_list

    made = variants.variants_generate(actor=ACTOR, product_id=shirt.pk)
    assert list(product_list(include_unpublished=True)) == [shirt]
    listed = variant_list(include_unpublished=True).order_by("pk")
    assert [v.pk for v in listed] == [v.pk for v in made]


def test_a_variant_whose_stock_is_not_tracked_is_sold_without_reserving(shirt):
    stocked = _published_with_stock(shirt, {("S", "Red"): 1})
    made_to_order = shirt.variants.get(option_values={"Size": "L", "Colour": "Blue"})
    variants.variant_update(actor=ACTOR, variant_id=made_to_order.pk, data={"track_stock": False})

    order = order_place(
        actor=ACTOR,
        items=[
            {"variant": made_to_order.pk, "quantity": 5},
            {"variant": stocked[("S", "Red")].pk, "quantity": 1},
        ],
        customer=CUSTOMER,
        shipping_address=ADDRESS,
    )
    lines = {i.product_id: i for i in OrderItem.objects.filter(order=order)}
    assert not lines[made_to_order.pk].stock_tracked
    assert not lines[made_to_order.pk].allocations.exists()
    assert not Stock.objects.filter(product=made_to_order).exists()
    assert Stock.objects.get(product=stocked[("S", "Red")]).reserved == 1
    from inventory.integrity import inventory_drift
    from orders.services import order_transition

    assert inventory_drift() == []
    order_transition(actor=ACTOR, order_id=order.pk, transition="cancel")
    assert Stock.objects.get(product=stocked[("S", "Red")]).reserved == 0
    assert inventory_drift() == []


def test_a_product_holding_stock_gets_no_variants_until_it_is_moved_off(category):
    lamp = catalog.product_create(
        actor=ACTOR, sku="LAMP", name="Lamp", price=Decimal("30.00"), category=category
    )
    stock_record_movement(actor=ACTOR, product_id=lamp.pk, kind="receipt", quantity=3, reason="")
    variants.product_set_options(
        actor=ACTOR, product_id=lamp.pk, options=[{"name": "Colour", "values": ["Black"]}]
    )
    with pytest.raises(Conflict) as refused:
        variants.variants_generate(actor=ACTOR, product_id=lamp.pk)
    assert refused.value.code == "product_holds_stock"
    assert not lamp.variants.exists()

    stock_record_movement(
        actor=ACTOR, product_id=lamp.pk, kind="adjustment", quantity=-3, reason="to variants"
    )
    (black,) = variants.variants_generate(actor=ACTOR, product_id=lamp.pk)
    # Stock now moves for the variant, never for the product itself.
    with pytest.raises(InvalidInput) as refused:
        stock_record_movement(
            actor=ACTOR, product_id=lamp.pk, kind="receipt", quantity=1, reason=""
        )
    assert refused.value.code == "variant_required"
    stock_record_movement(actor=ACTOR, product_id=black.pk, kind="receipt", quantity=3, reason="")
    assert Stock.objects.get(product=black).on_hand == 3
    from inventory.stocktake import stock_set_levels

    with pytest.raises(InvalidInput):
        stock_set_levels(actor=ACTOR, targets={lamp.pk: 5}, kind="correction", reason="count")


def test_the_last_variant_of_a_published_product_is_kept(category):
    cup = catalog.product_create(
        actor=ACTOR, sku="CUP", name="Cup", price=Decimal("5.00"), category=category
    )
    variants.product_set_options(
        actor=ACTOR, product_id=cup.pk, options=[{"name": "Colour", "values": ["Red", "Blue"]}]
    )
    red, blue = variants.variants_generate(actor=ACTOR, product_id=cup.pk)
    catalog.product_transition(actor=ACTOR, product_id=cup.pk, transition="publish")

    variants.variant_delete(actor=ACTOR, variant_id=blue.pk)
    with pytest.raises(Conflict) as refused:
        variants.variant_delete(actor=ACTOR, variant_id=red.pk)
    assert refused.value.code == "last_variant"
    assert cup.variants.get() == red
    catalog.product_transition(actor=ACTOR, product_id=cup.pk, transition="unpublish")
    variants.variant_delete(actor=ACTOR, variant_id=red.pk)
    assert not cup.variants.exists()
