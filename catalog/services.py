"""Catalog writes. Each is one transaction holding the change, its audit entry and event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.text import slugify
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from audit.actors import Actor
from audit.changes import diff, snapshot
from audit.services import audit_record, audit_record_many
from catalog.backorders import BACKORDER_FIELDS, backorders_apply
from catalog.cache import catalog_cache_bump
from catalog.errors import CatalogErrorCode as Code
from catalog.fields import PRODUCT_EDITABLE_FIELDS
from catalog.models import Category, Product, validate_attributes, variant_name
from catalog.payloads import PayloadBatch, category_payload, product_payload
from pms_backend.bulk_update import bulk_update_rows
from pms_backend.errors import Conflict, InvalidInput
from pms_backend.events.services import publish, publish_many
from pms_backend.plurals import counted

PRODUCT_FIELDS = list(PRODUCT_EDITABLE_FIELDS)
# The editable fields by column (``category_id``), less the SKU (the key of a bulk write).
PRODUCT_VALUE_FIELDS = tuple(
    Product._meta.get_field(name).attname for name in PRODUCT_EDITABLE_FIELDS if name != "sku"
)
# What a bulk write needs to know of a stored product (``ProductChange.stored``).
PRODUCT_STORED_FIELDS = ("id", "sku", "status", "published_at", "created_at", *PRODUCT_VALUE_FIELDS)
CATEGORY_FIELDS = ["name", "slug", "parent", "position", "is_active"]

TRANSITIONS = {
    "publish": "product.published",
    "unpublish": "product.unpublished",
    "archive": "product.archived",
    "restore": "product.restored",
}


def _after_catalog_commit() -> None:
    transaction.on_commit(catalog_cache_bump)


def _unique_slug(model, base: str, *, exclude_pk: int | None = None, max_length: int) -> str:
    base = (slugify(base) or "item")[:max_length]
    candidate, n = base, 1
    qs = model.objects.all()
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    while qs.filter(slug=candidate).exists():
        n += 1
        suffix = f"-{n}"
        candidate = base[: max_length - len(suffix)] + suffix
    return candidate


def _check_attributes(attributes: Any) -> None:
    """Refuse attributes the catalog does not keep (the rule of ``validate_attributes``)."""
    try:
        validate_attributes(attributes)
    except ValidationError as exc:
        raise InvalidInput(
            Code.INVALID_ATTRIBUTES,
            "Invalid attributes: " + " ".join(exc.messages),
            errors={"attributes": exc.messages},
        ) from exc


def variants_follow(product: Product) -> int:
    """Give the product's variants its status and publication date (its moves govern
    theirs); return how many changed. Called in the move's transaction."""
    return (
        Product.objects.filter(parent=product)
        .exclude(status=product.status, published_at=product.published_at)
        .update(status=product.status, published_at=product.published_at, updated_at=timezone.now())
    )


def _variants_copy(product: Product, changed: set[str]) -> None:
    """Give the product's variants its new name, currency or category: a variant is
    "<product name> (M / Red)", sold in the product's currency, in its category."""
    if not changed & {"name", "currency", "category"} or not product.options:
        return
    variants = list(Product.objects.filter(parent=product))
    now = timezone.now()
    for variant in variants:
        variant.name = variant_name(product, variant.option_values)
        variant.currency = product.currency
        variant.category_id = product.category_id
        variant.updated_at = now  # bulk_update skips auto_now: clients sync on it
    Product.objects.bulk_update(
        variants, ["name", "currency", "category", "updated_at"], batch_size=1000
    )


def variants_follow_many(product_ids: list[int]) -> int:
    """Give the variants of these products their product's status and publication date,
    in one statement (``variants_follow`` for many); return how many were written."""
    if not product_ids:
        return 0
    parent = Product.objects.filter(pk=OuterRef("parent_id"))
    return Product.objects.filter(parent_id__in=product_ids).update(
        status=Subquery(parent.values("status")[:1]),
        published_at=Subquery(parent.values("published_at")[:1]),
        updated_at=timezone.now(),
    )


def _check_publishable(product: Product, refusal: str) -> None:
    """Raise ``InvalidInput`` (``refusal`` and what is missing) unless ``product`` meets the
    publish rules (``Product.publish_problems``)."""
    problems = product.publish_problems()
    if problems:
        raise InvalidInput(
            Code.PUBLISH_REQUIREMENTS_UNMET,
            refusal + "; ".join(m for msgs in problems.values() for m in msgs),
            errors=problems,
        )


def _integrity_conflict(exc: IntegrityError, *, sku: str = "", slug: str = "") -> Conflict:
    message = str(exc).lower()
    if "sku" in message:
        return Conflict(
            Code.DUPLICATE_SKU,
            f"A product with SKU {sku!r} already exists.",
            errors={"sku": ["Already in use."]},
        )
    return Conflict(
        Code.DUPLICATE_SLUG,
        f"The slug {slug!r} is already in use.",
        errors={"slug": ["Already in use."]},
    )


# --- Categories ------------------------------------------------------------------------


def category_check_parent(category: Category, parent: Category | None) -> None:
    """Raise ``InvalidInput`` if ``parent`` is ``category`` or lies below it.

    The chain is read from the database, not from ``parent``'s copy, which may predate
    a move that committed while the caller waited for its lock.
    """
    node_id, seen = (parent.pk if parent is not None else None), set()
    while node_id is not None and node_id not in seen:
        if node_id == category.pk:
            assert parent is not None  # the walk starts at the parent
            raise InvalidInput(
                Code.CATEGORY_CYCLE,
                f"{parent.name!r} lies below {category.name!r}; a category cannot "
                "become its own ancestor.",
                errors={"parent": ["Would create a cycle."]},
            )
        seen.add(node_id)
        node_id = Category.objects.filter(pk=node_id).values_list("parent_id", flat=True).first()


def category_create(
    *,
    actor: Actor,
    name: str,
    slug: str | None = None,
    parent: Category | None = None,
    position: int = 0,
    is_active: bool = True,
) -> Category:
    """Create a category (slug derived from the name unless given)."""
    with transaction.atomic():
        if slug and Category.objects.filter(slug=slug).exists():
            raise Conflict(
                Code.DUPLICATE_SLUG,
                f"The slug {slug!r} is already in use.",
                errors={"slug": ["Already in use."]},
            )
        category = Category.objects.create(
            name=name,
            slug=slug or _unique_slug(Category, name, max_length=140),
            parent=parent,
            position=position,
            is_active=is_active,
        )
        audit_record(
            actor=actor,
            action="category.created",
            target=category,
            changes=diff({}, snapshot(category, CATEGORY_FIELDS)),
        )
        publish("category.updated", category_payload(category), subject=f"category:{category.pk}")
        _after_catalog_commit()
    return category


def category_update(*, actor: Actor, category_id: int, data: dict[str, Any]) -> Category:
    """Change a category's fields; refuse a parent that would make a cycle."""
    with transaction.atomic():
        if "parent" in data:
            # Two crossing moves (A under B, B under A) each pass the cycle check alone.
            # Moves are rare and the tree small: lock all of it, in one order, so they queue.
            list(Category.objects.select_for_update().order_by("pk").values_list("pk"))
        category = Category.objects.select_for_update().get(pk=category_id)
        before = snapshot(category, CATEGORY_FIELDS)
        if "parent" in data:
            category_check_parent(category, data["parent"])
        slug = data.get("slug")
        if slug and Category.objects.filter(slug=slug).exclude(pk=category.pk).exists():
            raise Conflict(
                Code.DUPLICATE_SLUG,
                f"The slug {slug!r} is already in use.",
                errors={"slug": ["Already in use."]},
            )
        for name, value in data.items():
            if name in CATEGORY_FIELDS:
                setattr(category, name, value)
        changes = diff(before, snapshot(category, CATEGORY_FIELDS))
        if not changes:
            return category
        category.save()
        audit_record(actor=actor, action="category.updated", target=category, changes=changes)
        publish("category.updated", category_payload(category), subject=f"category:{category.pk}")
        _after_catalog_commit()
    return category


def category_delete(*, actor: Actor, category_id: int) -> None:
    """Delete an empty category; refuse one that still holds products or subcategories."""
    with transaction.atomic():
        category = Category.objects.select_for_update().get(pk=category_id)
        product_count = category.products.count()
        if product_count:
            raise Conflict(
                Code.CATEGORY_IN_USE,
                f"{category.name!r} still holds {counted(product_count, 'product')}; "
                f"move {'it' if product_count == 1 else 'them'} first.",
            )
        if category.children.exists():
            raise Conflict(
                Code.CATEGORY_HAS_CHILDREN,
                f"{category.name!r} still has subcategories; move or delete them first.",
            )
        data = category_payload(category)
        audit_record(
            actor=actor,
            action="category.deleted",
            target=category,
            changes=diff(snapshot(category, CATEGORY_FIELDS), {}),
        )
        category.delete()
        publish("category.updated", {**data, "deleted": True}, subject=f"category:{category_id}")
        _after_catalog_commit()


# --- Products --------------------------------------------------------------------------


def product_create(
    *,
    actor: Actor,
    sku: str,
    name: str,
    price: Decimal,
    currency: str | None = None,
    category: Category | None = None,
    slug: str | None = None,
    description: str = "",
    attributes: dict[str, Any] | None = None,
    **backorders: Any,
) -> Product:
    """Create a Draft product; ``backorders`` are its backorder settings
    (``catalog.backorders.BACKORDER_FIELDS``) while it has no variants."""
    _check_attributes(attributes or {})
    unknown = set(backorders) - set(BACKORDER_FIELDS)
    if unknown:
        raise InvalidInput(
            "unknown_fields",
            f"A product has no field {', '.join(sorted(unknown))}.",
            errors={name: ["Unknown field."] for name in sorted(unknown)},
        )
    try:
        with transaction.atomic():
            if Product.objects.filter(sku=sku).exists():
                raise Conflict(
                    Code.DUPLICATE_SKU,
                    f"A product with SKU {sku!r} already exists.",
                    errors={"sku": ["Already in use."]},
                )
            if slug and Product.objects.filter(slug=slug).exists():
                raise Conflict(
                    Code.DUPLICATE_SLUG,
                    f"The slug {slug!r} is already in use.",
                    errors={"slug": ["Already in use."]},
                )
            product = Product.objects.create(
                sku=sku,
                name=name,
                slug=slug or _unique_slug(Product, f"{name}-{sku}", max_length=220),
                description=description,
                price=price,
                currency=currency or settings.PMS_DEFAULT_CURRENCY,
                category=category,
                attributes=attributes or {},
            )
            if backorders:
                backorders_apply(product, backorders)
                product.save(update_fields=list(backorders))
            audit_record(
                actor=actor,
                action="product.created",
                target=product,
                changes=diff({}, snapshot(product, [*PRODUCT_FIELDS, "status", *backorders])),
            )
            publish("product.created", product_payload(product), subject=f"product:{product.pk}")
            _after_catalog_commit()
    except IntegrityError as exc:  # a concurrent create won the race for the SKU or slug
        raise _integrity_conflict(exc, sku=sku, slug=slug or "") from exc
    return product


def product_update(*, actor: Actor, product_id: int, data: dict[str, Any]) -> Product:
    """Change a product's fields (never its status: that moves by transition), and the
    backorder settings of a product without variants (``catalog.backorders``)."""
    unknown = set(data) - set(PRODUCT_FIELDS) - set(BACKORDER_FIELDS)
    if unknown:
        raise InvalidInput(
            "unknown_fields",
            f"Cannot change {', '.join(sorted(unknown))} here.",
            errors={name: ["Not changeable."] for name in sorted(unknown)},
        )
    if "attributes" in data:
        _check_attributes(data["attributes"])
    try:
        with transaction.atomic():
            product = Product.objects.select_for_update().get(pk=product_id)
            shown = [*PRODUCT_FIELDS, *_backorders_named(data)]
            before = snapshot(product, shown)
            data = _apply_backorders(product, data)
            for field in ("sku", "slug"):
                value = data.get(field)
                if (
                    value is not None
                    and Product.objects.filter(**{field: value}).exclude(pk=product.pk).exists()
                ):
                    raise Conflict(
                        Code.DUPLICATE_SKU if field == "sku" else Code.DUPLICATE_SLUG,
                        f"The {field} {value!r} is already in use.",
                        errors={field: ["Already in use."]},
                    )
            for name, value in data.items():
                setattr(product, name, value)
            if product.status == Product.Status.PUBLISHED:
                _check_publishable(product, "A published product must keep ")
            changes = diff(before, snapshot(product, shown))
            if not changes:
                return product
            product.save()
            _variants_copy(product, set(changes))
            audit_record(actor=actor, action="product.updated", target=product, changes=changes)
            publish("product.updated", product_payload(product), subject=f"product:{product.pk}")
            _after_catalog_commit()
    except IntegrityError as exc:
        raise _integrity_conflict(exc, sku=data.get("sku", ""), slug=data.get("slug", "")) from exc
    return product


def _backorders_named(data: dict[str, Any]) -> list[str]:
    return [name for name in BACKORDER_FIELDS if name in data]


def _apply_backorders(product: Product, data: dict[str, Any]) -> dict[str, Any]:
    """Set the backorder settings in ``data`` on ``product``; return the rest of it."""
    backorders_apply(product, data)
    return {name: value for name, value in data.items() if name not in BACKORDER_FIELDS}


def product_transition(*, actor: Actor, product_id: int, transition: str) -> Product:
    """Move a product along its status machine (publish, unpublish, archive, restore).

    Publishing checks name, price > 0 and an active category, naming what is missing.
    A move the machine forbids, or one that loses a race, raises ``Conflict``.
    """
    if transition not in TRANSITIONS:
        raise InvalidInput(
            Code.UNKNOWN_TRANSITION,
            f"Unknown transition {transition!r}; known: {', '.join(TRANSITIONS)}.",
        )
    with transaction.atomic():
        # Locked like product_update: the save writes every field, and an edit committed
        # between an unlocked read and that save would be silently undone.
        product = (
            Product.objects.select_for_update(of=("self",))
            .select_related("category")
            .get(pk=product_id)
        )
        if product.parent_id is not None:
            raise Conflict(
                Code.VARIANT_FOLLOWS_PRODUCT,
                f"Product {product.pk} is a variant: it follows the status of its product "
                f"{product.parent_id}; move that one.",
            )
        before_status = product.status
        if transition == "publish" and before_status == Product.Status.DRAFT:
            _check_publishable(product, "Cannot publish: ")
        before = snapshot(product, ["status", "published_at"])
        try:
            getattr(product, transition)()
        except TransitionNotAllowed as exc:
            raise Conflict(
                Code.INVALID_TRANSITION,
                f"Cannot {transition} a product that is {before_status}.",
                extra={"current_status": before_status},
            ) from exc
        try:
            product.save()
        except ConcurrentTransition as exc:
            raise Conflict(
                Code.CONCURRENT_MODIFICATION,
                "The product's status changed meanwhile; reload and try again.",
            ) from exc
        variants_follow(product)
        audit_record(
            actor=actor,
            action=TRANSITIONS[transition],
            target=product,
            changes=diff(before, snapshot(product, ["status", "published_at"])),
        )
        publish(TRANSITIONS[transition], product_payload(product), subject=f"product:{product.pk}")
        _after_catalog_commit()
    return product


@dataclass(frozen=True)
class BulkOutcome:
    moved: list[Product]
    refused: list[tuple[Product, str]]


def product_bulk_transition(
    *, actor: Actor, product_ids: list[int], transition: str
) -> BulkOutcome:
    """Apply ``transition`` to each product in its own transaction; report each refusal."""
    moved, refused = [], []
    for product in Product.objects.filter(pk__in=product_ids).order_by("pk"):
        try:
            moved.append(
                product_transition(actor=actor, product_id=product.pk, transition=transition)
            )
        except (Conflict, InvalidInput) as exc:
            refused.append((product, exc.detail))
    return BulkOutcome(moved=moved, refused=refused)


def product_bulk_create(*, actor: Actor, products: list[Product]) -> int:
    """Insert the unsaved ``products`` whose SKU is new, in one transaction; return how many.

    For demo data (``seed_database``): one audit entry for the batch and no per-product
    events, so a load of thousands does not flood receivers. Imports, which change a live
    shop, use ``product_bulk_save`` (an entry and an event per product). The rules of
    single writes hold: attributes as ``validate_attributes`` takes them, and a product
    inserted as published meets the publish rules (``InvalidInput`` otherwise).
    """
    for product in products:
        _check_attributes(product.attributes)
        if product.status == Product.Status.PUBLISHED:
            _check_publishable(product, f"{product.sku}: cannot publish: ")
    return insert_new_skus(actor=actor, rows=products, action="product.bulk_created")


def insert_new_skus(*, actor: Actor, rows: list[Product], action: str) -> int:
    """Insert the unsaved products (or variants) whose SKU is new, in one transaction,
    audited as one ``action`` entry for the batch (no per-row events: demo and benchmark
    loads); return how many."""
    if not rows:
        return 0
    with transaction.atomic():
        existing = set(
            Product.objects.filter(sku__in=[p.sku for p in rows]).values_list("sku", flat=True)
        )
        new = [p for p in rows if p.sku not in existing]
        if not new:
            return 0
        Product.objects.bulk_create(new, batch_size=2000)
        audit_record(
            actor=actor,
            action=action,
            object_type="catalog.product",
            changes={
                "count": {"before": None, "after": len(new)},
                "skus": {"before": None, "after": [new[0].sku, new[-1].sku]},
            },
        )
        _after_catalog_commit()
    return len(new)


@dataclass
class ProductChange:
    """One product of ``product_bulk_save``: a new one (``stored`` None) or a change of one.

    ``values``: the editable fields by column (``PRODUCT_VALUE_FIELDS``), all of them.
    ``stored``: the product as it is (``PRODUCT_STORED_FIELDS``), read by the caller under
    lock. ``transitions``: the status machine's moves to make afterwards, in order.
    """

    sku: str
    values: dict[str, Any]
    stored: dict[str, Any] | None = None
    transitions: tuple[str, ...] = ()


@dataclass
class _Records:
    """The audit entries and events of a bulk write, written together at its end."""

    audit: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    payloads: PayloadBatch = field(default_factory=PayloadBatch)

    def add(self, action: str, product: Product, changes: dict[str, Any]) -> None:
        self.audit.append(
            {
                "action": action,
                "object_type": "catalog.product",
                "object_id": product.pk,
                "object_repr": str(product)[:200],
                "changes": changes,
            }
        )
        self.events.append((action, self.payloads.add(product), f"product:{product.pk}"))


def product_bulk_save(*, actor: Actor, changes: list[ProductChange]) -> list[Product]:
    """Create and change many products in one transaction; return them (saved), in order.

    Each product is recorded as ``product_create``, ``product_update`` and
    ``product_transition`` would record it, step by step: a ``product.created`` or
    ``product.updated`` audit entry and event, then one per transition
    (``product.published`` …), with the same changes and payloads; written in batches
    (imports of thousands of rows). The caller has checked what those services check
    (SKU and slug free, attributes, the publish rules: ``publish_problems_of``) on rows
    it holds locked.
    """
    if not changes:
        return []
    now = timezone.now()
    records = _Records()
    with transaction.atomic():
        built = [_bulk_instance(change, now, records) for change in changes]
        products = [product for product, _changed in built]
        Product.objects.bulk_create(
            [p for p, c in zip(products, changes, strict=True) if c.stored is None],
            batch_size=1000,
        )
        fields: set[str] = set()
        updated = []
        for (product, changed), change in zip(built, changes, strict=True):
            if change.stored is None:
                records.add(
                    "product.created",
                    product,
                    diff({}, snapshot(product, [*PRODUCT_FIELDS, "status"])),
                )
            fields.update(changed)
            if _bulk_transitions(product, change.transitions, records):
                fields.update(("status", "published_at"))
            if change.stored is not None or change.transitions:
                product.updated_at = now
                updated.append(product)
        bulk_update_rows(updated, [*sorted(fields), "updated_at"])
        # The variants of a product that moved follow it, as in product_transition.
        variants_follow_many(
            [p.pk for p, c in zip(products, changes, strict=True) if c.transitions and c.stored]
        )
        audit_record_many(actor=actor, entries=records.audit)
        records.payloads.complete()
        publish_many(records.events)
        _after_catalog_commit()
    return products


def _bulk_instance(
    change: ProductChange, now: datetime, records: _Records
) -> tuple[Product, list[str]]:
    """Return the product of ``change`` with its new values, and the columns that changed
    (a stored product is recorded as ``product_update`` records it, when one does)."""
    if change.stored is None:
        return Product(sku=change.sku, **change.values), []
    stored = change.stored
    product = Product(
        id=stored["id"],
        sku=stored["sku"],
        status=stored["status"],
        published_at=stored["published_at"],
        created_at=stored["created_at"],
        updated_at=now,
        **{name: stored[name] for name in PRODUCT_VALUE_FIELDS},
    )
    before = snapshot(product, PRODUCT_FIELDS)
    for name, value in change.values.items():
        setattr(product, name, value)
    changes = diff(before, snapshot(product, PRODUCT_FIELDS))
    if changes:
        records.add("product.updated", product, changes)
    return product, [Product._meta.get_field(name).attname for name in changes]


def _bulk_transitions(product: Product, transitions: tuple[str, ...], records: _Records) -> bool:
    """Move ``product`` along ``transitions``, recording each as ``product_transition``."""
    for name in transitions:
        before = snapshot(product, ["status", "published_at"])
        getattr(product, name)()
        records.add(
            TRANSITIONS[name], product, diff(before, snapshot(product, ["status", "published_at"]))
        )
    return bool(transitions)
