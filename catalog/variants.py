"""Variants: a product's options and the child products that sell each combination.

A product declares its options (``[{"name": "Size", "values": ["S", "M"]}, ...]``); each
variant is a child product (``parent``) with one value of every option, its own SKU,
optional barcode (a GTIN with a right check digit), price (the product's unless given),
weight and whether its stock is tracked. Stock, orders and the ledger name variants by
their id as they name any product; a product without variants is its own single variant.
The product's status governs its variants: they follow every move of it.

The only write path for variants and options; each write is one transaction with its
audit entry and event (``variant.created`` / ``variant.updated`` / ``variant.deleted``,
``product.updated`` for options).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.text import slugify

from audit.actors import Actor
from audit.changes import diff, snapshot
from audit.services import audit_record, audit_record_many
from catalog.backorders import BACKORDER_FIELDS, backorders_apply
from catalog.cache import catalog_cache_bump
from catalog.errors import CatalogErrorCode as Code
from catalog.models import (
    SKU_VALIDATOR,
    Product,
    gtin_problem,
    options_key,
    options_problem,
    variant_name,
)
from catalog.payloads import PayloadBatch, fill_availability, product_payload, variant_payload
from catalog.services import insert_new_skus
from pms_backend.bulk_update import bulk_update_rows
from pms_backend.errors import Conflict, InvalidInput, NotFound
from pms_backend.events.services import publish, publish_many

MAX_VARIANTS = 1000

# Who may refuse to give products variants (inventory: a product that holds stock of its
# own, which its variants could not sell). Each raises a DomainError to refuse.
_variant_guards: list[Callable[[list[Product]], None]] = []


def register_variant_guard(guard: Callable[[list[Product]], None]) -> None:
    """Call ``guard(products)`` before products get their first variants, under their
    locks (one call for a whole import batch)."""
    _variant_guards.append(guard)


def _guard_first_variants(products: list[Product]) -> None:
    having = set(
        Product.objects.filter(parent_id__in=[p.pk for p in products])
        .values_list("parent_id", flat=True)
        .distinct()
    )
    first = [p for p in products if p.pk not in having]
    if first:
        for guard in _variant_guards:
            guard(first)


VARIANT_FIELDS = [
    "sku",
    "barcode",
    "price",
    "option_values",
    "weight_grams",
    "track_stock",
    *BACKORDER_FIELDS,
]


def _after_commit() -> None:
    transaction.on_commit(catalog_cache_bump)


def _parent_for_update(product_id: int) -> Product:
    try:
        product = Product.objects.select_for_update(of=("self",)).get(pk=product_id)
    except Product.DoesNotExist:
        raise NotFound(Code.UNKNOWN_PRODUCT, f"No product has id {product_id}.") from None
    if product.parent_id is not None:
        raise InvalidInput(
            Code.INVALID_VARIANT,
            f"Product {product_id} is a variant of product {product.parent_id}; variants "
            "are one level deep.",
        )
    return product


def _check_option_values(product: Product, values: Any) -> dict[str, str]:
    """Return ``values`` as stored (the product's option names, in its order); raise
    ``InvalidInput`` unless it names every declared option once, with a declared value."""
    if not isinstance(values, dict):
        raise InvalidInput(
            Code.INVALID_VARIANT,
            'A variant\'s options are an object such as {"Size": "M"}.',
            errors={"options": ["Not an object."]},
        )
    declared = {o["name"]: o["values"] for o in product.options}
    unknown = sorted(set(values) - set(declared))
    missing = [name for name in declared if name not in values]
    if unknown or missing:
        said = []
        if unknown:
            said.append(f"the product declares no option {', '.join(map(repr, unknown))}")
        if missing:
            said.append(f"a value for {', '.join(map(repr, missing))} is needed")
        raise InvalidInput(
            Code.INVALID_VARIANT,
            f"Product {product.pk} declares the options "
            f"{', '.join(map(repr, declared)) or '(none)'}: {'; '.join(said)}.",
            errors={"options": ["Does not match the product's options."]},
        )
    for name, value in values.items():
        if value not in declared[name]:
            raise InvalidInput(
                Code.INVALID_VARIANT,
                f"{value!r} is not a value of the option {name!r} "
                f"(declared: {', '.join(map(repr, declared[name]))}).",
                errors={"options": [f"Undeclared value for {name}."]},
            )
    return {name: values[name] for name in declared}


def _check_barcode(barcode: Any) -> str | None:
    if barcode in (None, ""):
        return None
    if not isinstance(barcode, str) or gtin_problem(barcode):
        problem = gtin_problem(barcode) if isinstance(barcode, str) else "Not a string."
        raise InvalidInput(Code.INVALID_BARCODE, problem, errors={"barcode": [problem]})
    return barcode


def _check_sku(sku: Any) -> str:
    if not isinstance(sku, str) or not re.fullmatch(SKU_VALIDATOR.regex, sku):
        raise InvalidInput(
            Code.INVALID_VARIANT, str(SKU_VALIDATOR.message), errors={"sku": ["Invalid."]}
        )
    return sku


def _check_price(price: Any) -> Decimal:
    exponent = price.as_tuple().exponent if isinstance(price, Decimal) else None
    if not isinstance(exponent, int) or price < 0 or exponent < -2 or price >= 10**10:
        raise InvalidInput(
            Code.INVALID_VARIANT,
            "A price is a decimal from 0 to 9,999,999,999.99 with at most two decimals.",
            errors={"price": ["Invalid."]},
        )
    return price


def _check_weight(weight: Any) -> int | None:
    if weight is None:
        return None
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 10**9:
        raise InvalidInput(
            Code.INVALID_VARIANT,
            "A weight is a whole number of grams from 0 to 1,000,000,000.",
            errors={"weight_grams": ["Invalid."]},
        )
    return weight


def _variant_name(product: Product, values: dict[str, str]) -> str:
    return variant_name(product, values)


def _new_variant(
    product: Product,
    values: dict[str, str],
    fields: dict[str, Any],
    *,
    slug: str | None = None,
    slugs_taken: set[str] | None = None,
) -> Product:
    """Return the unsaved variant; ``slug`` as given (bulk loads), else a free one that
    differs from ``slugs_taken`` too (slugs given to variants of a batch not saved yet)."""
    key = options_key(values)
    variant = Product(
        parent=product,
        sku=_check_sku(fields["sku"]),
        name=_variant_name(product, values),
        slug=slug
        or _free_slug(
            _slug_base(product, values), slugs_taken if slugs_taken is not None else set()
        ),
        price=_check_price(fields.get("price", product.price)),
        currency=product.currency,
        category_id=product.category_id,
        option_values=values,
        options_key=key,
        barcode=_check_barcode(fields.get("barcode")),
        weight_grams=_check_weight(fields.get("weight_grams")),
        track_stock=bool(fields.get("track_stock", True)),
        published_at=product.published_at,
    )
    # A variant follows its product's status from its first moment (the FSM field takes
    # no assignment once the instance exists, so the row is written with it).
    variant.__dict__["status"] = product.status
    return variant


def _slug_base(product: Product, values: dict[str, str]) -> str:
    return f"{product.slug}-{'-'.join(values.values())}"


def variant_build(product: Product, values: dict[str, str], **fields: Any) -> Product:
    """Return an unsaved variant of ``product`` with the option ``values`` (checked) and
    ``fields`` (``sku``; ``price``, ``barcode``, ``weight_grams``, ``track_stock``), for
    ``variants_bulk_create``. Its slug is the product's and the values', unchecked: for a
    product whose slug is unique to it (the demo's end with their SKU)."""
    values = _check_option_values(product, values)
    slug = slugify(_slug_base(product, values))[:220]
    return _new_variant(product, values, fields, slug=slug)


def variants_bulk_create(*, actor: Actor, variants: list[Product]) -> int:
    """Insert the unsaved ``variants`` (``variant_build``) whose SKU is new, in one
    transaction; return how many.

    For demo data (``seed_database``), as ``catalog.services.product_bulk_create``: one
    audit entry for the batch and no per-variant events, so a load of hundreds of
    thousands does not flood receivers. Single writes and imports use ``variant_create``
    and ``variants_bulk_save`` (an entry and an event per variant).
    """
    return insert_new_skus(actor=actor, rows=variants, action="variant.bulk_created")


def _free_slug(base: str, taken: set[str]) -> str:
    """Return a slug no product has and not in ``taken`` (which it joins): values that
    differ only in punctuation ("A+", "A-") slugify alike."""
    slug = (slugify(base) or "variant")[:200]
    candidate, n = slug, 1
    while candidate in taken or Product.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{slug}-{n}"
    taken.add(candidate)
    return candidate


def _refuse_taken(variant: Product, *, exclude_pk: int | None = None) -> None:
    """Raise ``Conflict`` for a SKU, barcode or combination another product holds."""
    others = Product.objects.exclude(pk=exclude_pk) if exclude_pk else Product.objects.all()
    if others.filter(sku=variant.sku).exists():
        raise Conflict(
            Code.DUPLICATE_SKU,
            f"A product with SKU {variant.sku!r} already exists.",
            errors={"sku": ["Already in use."]},
        )
    if variant.barcode and others.filter(barcode=variant.barcode).exists():
        raise Conflict(
            Code.DUPLICATE_BARCODE,
            f"The barcode {variant.barcode} is already another product's.",
            errors={"barcode": ["Already in use."]},
        )
    if others.filter(parent_id=variant.parent_id, options_key=variant.options_key).exists():
        raise Conflict(
            Code.DUPLICATE_VARIANT,
            f"Product {variant.parent_id} already has a variant "
            f"{', '.join(f'{k}: {v}' for k, v in variant.option_values.items())}.",
            errors={"options": ["Already a variant."]},
        )


def _record_created(actor: Actor, variants: list[Product]) -> None:
    audit_record_many(
        actor=actor,
        entries=[
            {
                "action": "variant.created",
                "object_type": "catalog.product",
                "object_id": v.pk,
                "object_repr": str(v),
                "changes": diff({}, snapshot(v, ["parent", *VARIANT_FIELDS])),
            }
            for v in variants
        ],
    )
    publish_many(
        [
            ("variant.created", variant_payload(v, available=0), f"product:{v.parent_id}")
            for v in variants
        ]
    )


def product_set_options(*, actor: Actor, product_id: int, options: Any) -> Product:
    """Declare the product's options (``[{"name", "values"}]``, at most 3).

    Its variants must keep values it declares: removing an option or a value a variant
    uses is refused (409 ``option_in_use``); adding values or reordering is free. A
    product whose variants exist cannot drop to no options.
    """
    problem = options_problem(options)
    if problem:
        raise InvalidInput(Code.INVALID_OPTIONS, problem, errors={"options": [problem]})
    options = [
        {"name": o["name"].strip(), "values": [v.strip() for v in o["values"]]} for o in options
    ]
    with transaction.atomic():
        product = _parent_for_update(product_id)
        declared = {o["name"]: set(o["values"]) for o in options}
        names = [o["name"] for o in options]
        for variant in product.variants.only("pk", "sku", "option_values"):
            values = variant.option_values
            if set(values) != set(declared) or any(
                value not in declared[name] for name, value in values.items()
            ):
                raise Conflict(
                    Code.OPTION_IN_USE,
                    f"Variant {variant.sku} is "
                    f"{', '.join(f'{k}: {v}' for k, v in values.items())}: the options must "
                    "keep every option and value a variant has (delete the variant first).",
                    errors={"options": ["A variant uses what would be removed."]},
                )
        before = snapshot(product, ["options"])
        product.options = options
        changes = diff(before, snapshot(product, ["options"]))
        if not changes:
            return product
        product.save(update_fields=["options", "updated_at"])
        # Stored in the product's option order, so names and keys read the same everywhere.
        for variant in product.variants.all():
            variant.option_values = {name: variant.option_values[name] for name in names}
            variant.save(update_fields=["option_values"])
        audit_record(actor=actor, action="product.updated", target=product, changes=changes)
        publish("product.updated", product_payload(product), subject=f"product:{product.pk}")
        _after_commit()
    return product


def variant_create(
    *, actor: Actor, product_id: int, options: Any, sku: Any, **fields: Any
) -> Product:
    """Add one variant: ``options`` names a value of every option the product declares;
    ``price`` defaults to the product's. Refuse a combination, SKU or barcode already
    taken (409) and values the product does not declare (400)."""
    unknown = set(fields) - {"price", "barcode", "weight_grams", "track_stock"}
    if unknown:
        raise InvalidInput(
            Code.INVALID_VARIANT,
            f"A variant has no field {', '.join(sorted(unknown))}.",
            errors={name: ["Unknown field."] for name in sorted(unknown)},
        )
    if not isinstance(fields.get("track_stock", True), bool):
        # As variant_update refuses it: bool("false") would be True.
        raise InvalidInput(
            Code.INVALID_VARIANT,
            "track_stock is true or false.",
            errors={"track_stock": ["Not a boolean."]},
        )
    try:
        with transaction.atomic():
            product = _parent_for_update(product_id)
            if not product.options:
                raise InvalidInput(
                    Code.INVALID_VARIANT,
                    f"Product {product.pk} declares no options; declare them (such as Size) "
                    "before adding variants.",
                )
            _check_variant_count(product, 1)
            _guard_first_variants([product])
            variant = _new_variant(
                product, _check_option_values(product, options), {"sku": sku, **fields}
            )
            _refuse_taken(variant)
            variant.save()
            _record_created(actor, [variant])
            _after_commit()
    except IntegrityError as exc:  # a concurrent write won the SKU, barcode or combination
        raise Conflict(
            Code.DUPLICATE_VARIANT,
            "Another write took this SKU, barcode or combination meanwhile; reload and retry.",
        ) from exc
    return variant


def _check_variant_count(product: Product, adding: int) -> None:
    have = product.variants.count()
    if have + adding > MAX_VARIANTS:
        raise InvalidInput(
            Code.INVALID_VARIANT,
            f"A product may have at most {MAX_VARIANTS:,} variants; it has {have:,}, and "
            f"{adding:,} variants more would pass that: name the combinations to make.",
        )


def _generated_sku(product: Product, values: dict[str, str]) -> str:
    parts = [re.sub(r"[^A-Za-z0-9]+", "", v).upper()[:12] or "X" for v in values.values()]
    return f"{product.sku}-{'-'.join(parts)}"[:64]


def variants_generate(
    *, actor: Actor, product_id: int, combinations: list[dict[str, str]] | None = None
) -> list[Product]:
    """Make the product's variants in one step: every combination of its options, or only
    ``combinations``; those it has already are left alone. Each gets the SKU
    ``<product SKU>-<VALUE>-<VALUE>`` (made unique) and the product's price. Return the
    new variants."""
    try:
        with transaction.atomic():
            return _generate(actor, product_id, combinations)
    except IntegrityError as exc:  # a concurrent write took a SKU or slug meanwhile
        raise Conflict(
            Code.DUPLICATE_VARIANT,
            "Another write took one of these SKUs or combinations meanwhile; reload and retry.",
        ) from exc


def _generate(
    actor: Actor, product_id: int, combinations: list[dict[str, str]] | None
) -> list[Product]:
    product = _parent_for_update(product_id)
    if not product.options:
        raise InvalidInput(
            Code.INVALID_VARIANT,
            f"Product {product.pk} declares no options to make variants from.",
        )
    have = set(product.variants.values_list("options_key", flat=True))
    new: list[Product] = []
    slugs: set[str] = set()
    for values in _wanted(product, have, combinations):
        key = options_key(values)
        if key in have:
            continue
        have.add(key)
        sku = _free_sku(_generated_sku(product, values), new)
        new.append(_new_variant(product, values, {"sku": sku}, slugs_taken=slugs))
    _check_variant_count(product, len(new))
    if new:
        _guard_first_variants([product])
    for variant in new:
        variant.save()
    _record_created(actor, new)
    if new:
        _after_commit()
    return new


def _wanted(
    product: Product, have: set[str], combinations: list[dict[str, str]] | None
) -> Iterable[dict[str, str]]:
    """Return the combinations to make (every one when ``combinations`` is None), lazily;
    raise ``InvalidInput`` for more than a product may have or an undeclared value."""
    if combinations is None:
        # Counted before anything is made: 3 options of 100 values are a million
        # combinations (every variant's values are declared ones, so it is one of them).
        _check_variant_count(
            product, math.prod(len(o["values"]) for o in product.options) - len(have)
        )
        names = [o["name"] for o in product.options]
        return (
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(o["values"] for o in product.options))
        )
    if not isinstance(combinations, list) or not combinations:
        raise InvalidInput(Code.INVALID_VARIANT, "Name at least one combination.")
    if len(combinations) > MAX_VARIANTS:
        raise InvalidInput(
            Code.INVALID_VARIANT,
            f"A product may have at most {MAX_VARIANTS:,} variants; "
            f"{len(combinations):,} combinations are more.",
        )
    return [_check_option_values(product, c) for c in combinations]


def _free_sku(sku: str, new: list[Product]) -> str:
    """Return ``sku``, or ``sku-2``, ``sku-3``…: the first no product and none of ``new``
    (made, not saved yet) has."""
    taken = {
        *Product.objects.filter(sku__startswith=sku).values_list("sku", flat=True),
        *(v.sku for v in new),
    }
    base, n = sku, 1
    while sku in taken:
        n += 1
        sku = f"{base[: 64 - len(str(n)) - 1]}-{n}"
    return sku


def variant_update(*, actor: Actor, variant_id: int, data: dict[str, Any]) -> Product:
    """Change a variant's SKU, barcode, price, options (another free combination),
    weight, stock tracking or backorder settings (``catalog.backorders``)."""
    names = {"sku", "barcode", "price", "options", "weight_grams", "track_stock", *BACKORDER_FIELDS}
    unknown = set(data) - names
    if unknown:
        raise InvalidInput(
            Code.INVALID_VARIANT,
            f"Cannot change {', '.join(sorted(unknown))} of a variant.",
            errors={name: ["Not changeable."] for name in sorted(unknown)},
        )
    try:
        with transaction.atomic():
            product, variant = _variant_and_product_for_update(variant_id)
            before = snapshot(variant, VARIANT_FIELDS)
            if "sku" in data:
                variant.sku = _check_sku(data["sku"])
            if "barcode" in data:
                variant.barcode = _check_barcode(data["barcode"])
            if "price" in data:
                variant.price = _check_price(data["price"])
            if "weight_grams" in data:
                variant.weight_grams = _check_weight(data["weight_grams"])
            if "track_stock" in data:
                if not isinstance(data["track_stock"], bool):
                    raise InvalidInput(
                        Code.INVALID_VARIANT,
                        "track_stock is true or false.",
                        errors={"track_stock": ["Not a boolean."]},
                    )
                variant.track_stock = data["track_stock"]
            if "options" in data:
                variant.option_values = _check_option_values(product, data["options"])
                variant.options_key = options_key(variant.option_values)
                variant.name = _variant_name(product, variant.option_values)
            backorders_apply(variant, data)
            changes = diff(before, snapshot(variant, VARIANT_FIELDS))
            if not changes:
                return variant
            _refuse_taken(variant, exclude_pk=variant.pk)
            variant.save()
            audit_record(actor=actor, action="variant.updated", target=variant, changes=changes)
            publish(
                "variant.updated", variant_payload(variant), subject=f"product:{variant.parent_id}"
            )
            _after_commit()
    except IntegrityError as exc:
        raise Conflict(
            Code.DUPLICATE_VARIANT,
            "Another write took this SKU, barcode or combination meanwhile; reload and retry.",
        ) from exc
    return variant


def _variant_and_product_for_update(variant_id: int) -> tuple[Product, Product]:
    """Lock the variant's product, then the variant (the order every variant write and an
    options change take, so they wait for each other instead of crossing); return both."""
    parent_id = (
        Product.objects.filter(pk=variant_id, parent__isnull=False)
        .values_list("parent_id", flat=True)
        .first()
    )
    if parent_id is None:
        raise NotFound(Code.UNKNOWN_VARIANT, f"No variant has id {variant_id}.")
    return _parent_for_update(parent_id), _variant_for_update(variant_id)


def _variant_for_update(variant_id: int) -> Product:
    variant = (
        Product.objects.select_for_update(of=("self",))
        .filter(pk=variant_id, parent__isnull=False)
        .first()
    )
    if variant is None:
        raise NotFound(Code.UNKNOWN_VARIANT, f"No variant has id {variant_id}.")
    return variant


def variant_delete(*, actor: Actor, variant_id: int) -> None:
    """Delete a variant nothing refers to yet. One with stock, ledger lines or order
    lines is kept (409 ``variant_in_use``): archive its product, or take its stock off.
    The last variant of a published product is kept too (409 ``last_variant``): the
    product would be on sale with nothing to sell."""
    with transaction.atomic():
        product, variant = _variant_and_product_for_update(variant_id)
        if product.status == Product.Status.PUBLISHED and product.variants.count() == 1:
            raise Conflict(
                Code.LAST_VARIANT,
                f"{variant.sku} is the last variant of the published product {product.sku}: "
                "unpublish or archive the product first, or make another variant.",
            )
        # Nothing refers to a variant that can be deleted: it has no stock.
        data = variant_payload(variant, available=0) | {"deleted": True}
        shown = str(variant)
        try:
            with transaction.atomic():
                variant.delete()
        except ProtectedError as exc:
            raise Conflict(
                Code.VARIANT_IN_USE,
                f"Variant {variant.sku} has stock, ledger lines or orders, which keep it; "
                "archive the product instead.",
            ) from exc
        audit_record_many(
            actor=actor,
            entries=[
                {
                    "action": "variant.deleted",
                    "object_type": "catalog.product",
                    "object_id": data["id"],
                    "object_repr": shown,
                    "changes": {"sku": {"before": data["sku"], "after": None}},
                }
            ],
        )
        publish("variant.deleted", data, subject=f"product:{data['product']}")
        _after_commit()


@dataclass
class VariantChanges:
    """What a bulk write (an import) does to one product's variants."""

    product_id: int
    options: list[dict[str, Any]]  # the product's options afterwards
    # Variants to make: {"sku", "options", "price", "barcode", "weight_grams", "track_stock"}
    new: list[dict[str, Any]] = field(default_factory=list)
    # Variants to change, by id: the fields ``variant_update`` takes, with their new values
    changed: dict[int, dict[str, Any]] = field(default_factory=dict)


def variants_bulk_save(*, actor: Actor, changes: list[VariantChanges]) -> dict[str, int]:
    """Declare options, make and change variants of many products in one transaction;
    return the new variants' ids by SKU.

    Each product and variant is recorded as ``product_set_options``, ``variant_create``
    and ``variant_update`` would record it (``product.updated`` for options,
    ``variant.created``, ``variant.updated``: an audit entry and an event each), written
    in a few statements per call (imports of thousands of rows). The caller has checked
    what those services check, on rows it holds locked: the options (only values added,
    ``options_problem``), each combination declared and free, SKUs and barcodes free and
    valid (``gtin_problem``), prices and weights in range.
    """
    if not changes:
        return {}
    entries: list[dict[str, Any]] = []
    events: list[tuple[str, dict[str, Any], str]] = []
    payloads = PayloadBatch()
    with transaction.atomic():
        parents = Product.objects.in_bulk([c.product_id for c in changes])
        declared = []
        for change in changes:
            product = parents[change.product_id]
            before = snapshot(product, ["options"])
            product.options = change.options
            options_changed = diff(before, snapshot(product, ["options"]))
            if options_changed:
                product.updated_at = timezone.now()
                declared.append(product)
                entries.append(_entry("product.updated", product, options_changed))
                events.append(("product.updated", payloads.add(product), f"product:{product.pk}"))
        bulk_update_rows(declared, ["options", "updated_at"])
        new = _bulk_new(parents, changes)
        _guard_first_variants([parents[pid] for pid in {v.parent_id for v in new}])
        Product.objects.bulk_create(new, batch_size=1000)
        for variant in new:
            entries.append(
                _entry(
                    "variant.created",
                    variant,
                    diff({}, snapshot(variant, ["parent", *VARIANT_FIELDS])),
                )
            )
            events.append(
                (
                    "variant.created",
                    variant_payload(variant, available=0),
                    f"product:{variant.parent_id}",
                )
            )
        _bulk_changed(parents, changes, entries, events)
        audit_record_many(actor=actor, entries=entries)
        payloads.complete()  # the products' variants and stock: two queries for them all
        fill_availability([data for action, data, _ in events if action == "variant.updated"])
        publish_many(events)
        _after_commit()
    return {variant.sku: variant.pk for variant in new}


def _entry(action: str, product: Product, changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "action": action,
        "object_type": "catalog.product",
        "object_id": product.pk,
        "object_repr": str(product)[:200],
        "changes": changes,
    }


def _bulk_new(parents: dict[int, Product], changes: list[VariantChanges]) -> list[Product]:
    """Return the unsaved new variants, each with a free slug (one query for them all)."""
    wanted = [(parents[change.product_id], fields) for change in changes for fields in change.new]
    bases = [
        slugify(_slug_base(product, fields["options"]))[:200] or "variant"
        for product, fields in wanted
    ]
    taken = set(Product.objects.filter(slug__in=bases).values_list("slug", flat=True))
    new = []
    for (product, fields), base in zip(wanted, bases, strict=True):
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
            if Product.objects.filter(slug=slug).exists():
                taken.add(slug)
        taken.add(slug)
        values = dict(fields)
        new.append(_new_variant(product, values.pop("options"), values, slug=slug))
    return new


def _bulk_changed(
    parents: dict[int, Product],
    changes: list[VariantChanges],
    entries: list[dict[str, Any]],
    events: list[tuple[str, dict[str, Any], str]],
) -> None:
    """Write the changed variants (one read, one update) and note their records."""
    wanted = {pk: data for change in changes for pk, data in change.changed.items()}
    if not wanted:
        return
    now = timezone.now()
    updated: list[Product] = []
    columns: set[str] = set()
    for variant in Product.objects.filter(pk__in=list(wanted)).order_by("pk"):
        data = wanted[variant.pk]
        before = snapshot(variant, VARIANT_FIELDS)
        for name in ("barcode", "price", "weight_grams", "track_stock"):
            if name in data:
                setattr(variant, name, data[name])
        if "options" in data:
            product = parents[variant.parent_id]
            variant.option_values = data["options"]
            variant.options_key = options_key(variant.option_values)
            variant.name = _variant_name(product, variant.option_values)
            columns.update(("option_values", "options_key", "name"))
        changed = diff(before, snapshot(variant, VARIANT_FIELDS))
        if not changed:
            continue
        columns.update(name for name in changed if name != "option_values")
        variant.updated_at = now
        updated.append(variant)
        entries.append(_entry("variant.updated", variant, changed))
        # What is available of each is read for them all at once (variants_bulk_save).
        shown = variant_payload(variant, available=0)
        events.append(("variant.updated", shown, f"product:{variant.parent_id}"))
    bulk_update_rows(updated, [*sorted(columns), "updated_at"])
