"""Transfers between locations: the only writer of ``Transfer`` and ``TransferLine``.

Each step is one transaction: the transfer row is locked first (only these services lock
it), then the products' totals and levels in the global order every stock writer uses
(``_lock_stock``, then ``_lock_levels``), so a transfer queues behind orders instead of
deadlocking with them. Stock leaves the source at dispatch (``transfer_out``) and arrives
at the destination at receipt (``transfer_in``); in between it is at no location, and the
products' totals count only what their locations hold. Every step writes its ledger
movements (reference ``transfer:<number>``), audit entries and events together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record_many
from catalog.models import Product
from inventory.errors import InventoryErrorCode as Code
from inventory.models import Location, Transfer, TransferLine
from inventory.payloads import transfer_representation
from inventory.services import (
    MAX_MOVEMENT_QUANTITY,
    Kind,
    StockRecords,
    _apply,
    _Delta,
    _lock_levels,
    _lock_stock,
    refuse_products_with_variants,
)
from pms_backend.errors import Conflict, InvalidInput, NotFound
from pms_backend.events.services import publish_many

Status = Transfer.Status
NOTE_MAX = Transfer._meta.get_field("note").max_length
# Product (or its id) -> quantity.
Lines = Mapping[Product, int] | Mapping[int, int]


def _reference(transfer: Transfer) -> str:
    return f"transfer:{transfer.number}"


def _clean_lines(lines: Lines | None) -> dict[int, int]:
    """Return ``{product_id: quantity}``; refuse empty lines, bad quantities and products
    that do not exist (400)."""
    if not lines:
        raise InvalidInput(
            Code.INVALID_TRANSFER,
            "A transfer needs at least one line.",
            errors={"lines": ["At least one line is required."]},
        )
    cleaned: dict[int, int] = {}
    for product, quantity in lines.items():
        product_id = product.pk if isinstance(product, Product) else product
        if isinstance(product_id, bool) or not isinstance(product_id, int):
            raise InvalidInput(
                Code.UNKNOWN_PRODUCT,
                f"{product_id!r} is not a product id.",
                errors={"lines": [f"{product_id!r} is not a product id."]},
            )
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 0 < quantity <= MAX_MOVEMENT_QUANTITY
        ):
            message = (
                f"Quantity for product {product_id} must be from 1 to {MAX_MOVEMENT_QUANTITY:,}."
            )
            raise InvalidInput(Code.INVALID_TRANSFER, message, errors={"lines": [message]})
        cleaned[product_id] = quantity
    known = set(Product.objects.filter(pk__in=cleaned).values_list("pk", flat=True))
    unknown = sorted(set(cleaned) - known)
    if unknown:
        message = f"No product has id {', '.join(map(str, unknown))}."
        raise InvalidInput(
            Code.UNKNOWN_PRODUCT, message, errors={"lines": [message]}, extra={"products": unknown}
        )
    refuse_products_with_variants(cleaned)
    return cleaned


def _location(value: Location | int | str, *, field: str) -> Location:
    """Return the location named by ``value`` (a ``Location``, id or code), or refuse it
    (400: it is in the request body, not the URL)."""
    if isinstance(value, Location):
        return value
    lookup = {"pk": value} if isinstance(value, int) else {"code": value}
    found = Location.objects.filter(**lookup).first()
    if found is None:
        message = f"No stock location is {value!r}."
        raise InvalidInput(Code.UNKNOWN_LOCATION, message, errors={field: [message]})
    return found


def _require_active(*locations: Location) -> None:
    inactive = [location.code for location in locations if not location.is_active]
    if inactive:
        raise Conflict(
            Code.LOCATION_INACTIVE,
            f"Location {', '.join(inactive)} is not active; activate it before moving stock "
            "there or from there.",
        )


def _lock(transfer: Transfer | str | int) -> Transfer:
    """Lock and return the transfer (by itself, its number or id); 404 when there is none."""
    if isinstance(transfer, Transfer):
        lookup: dict[str, Any] = {"pk": transfer.pk}
    elif isinstance(transfer, int):
        lookup = {"pk": transfer}
    else:
        lookup = {"number": transfer}
    found = (
        Transfer.objects.select_for_update(of=("self",))
        .select_related("from_location", "to_location")
        .filter(**lookup)
        .first()
    )
    if found is None:
        raise NotFound(Code.UNKNOWN_TRANSFER, f"No transfer is {transfer}.")
    _hold(found.from_location, found.to_location)
    return found


def _hold(*locations: Location) -> None:
    """Key-share lock ``locations`` and re-read whether they are active.

    A location write locks its row ``FOR UPDATE``: deactivating one waits for this step
    (and then sees the transfer in transit), or this step waits for it and sees the
    location inactive. Movements and orders take the same key-share lock by naming it.
    """
    by_pk = {location.pk: location for location in locations}
    table = Location._meta.db_table
    lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, is_active FROM {table} WHERE id IN ({', '.join(['%s'] * len(by_pk))}) "  # noqa: S608 -- the table's name, ids as parameters
            f"ORDER BY id{lock}",
            sorted(by_pk),
        )
        for pk, is_active in cursor.fetchall():
            for location in locations:
                if location.pk == pk:
                    location.is_active = is_active


def _require_status(transfer: Transfer, step: str, *allowed: str) -> None:
    if transfer.status not in allowed:
        raise Conflict(
            Code.INVALID_TRANSITION,
            f"Transfer {transfer.number} is {transfer.get_status_display().lower()}; only a "
            f"transfer that is {' or '.join(Status(s).label.lower() for s in allowed)} can "
            f"be {step}.",
            # Not "status": that is the problem's HTTP status.
            extra={"transfer_status": transfer.status},
        )


def _record(
    *,
    actor: Actor,
    transfer: Transfer,
    lines: list[TransferLine],
    action: str,
    changes: dict[str, Any],
    records: StockRecords | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the step's audit entries and events (the stock ones ``_apply`` left in
    ``records`` too) in the caller's transaction."""
    records = records or StockRecords()
    audit_record_many(
        actor=actor,
        entries=[
            *records.audit_entries,
            {
                "action": action,
                "object_type": "inventory.transfer",
                "object_id": transfer.pk,
                "changes": changes,
            },
        ],
    )
    data = transfer_representation(transfer, lines) | (extra or {})
    publish_many([*records.events, (action, data, f"transfer:{transfer.number}")])


def _lines_shown(lines: Mapping[int, int]) -> dict[str, int]:
    return {str(product_id): quantity for product_id, quantity in sorted(lines.items())}


def _status_change(before: str, after: str) -> dict[str, Any]:
    return {"status": {"before": before, "after": after}}


def transfer_create(
    *,
    actor: Actor,
    from_location: Location | int | str,
    to_location: Location | int | str,
    lines: Lines,
    note: str = "",
) -> Transfer:
    """Draft a transfer of ``lines`` (product → quantity) between two active locations.

    Nothing moves yet: stock leaves at ``transfer_dispatch``. Refuse (400) a transfer to
    the same location, an unknown location or product, an empty line list or a quantity
    outside 1 to ``MAX_MOVEMENT_QUANTITY``; (409) an inactive location.
    """
    note = _clean_note(note)
    cleaned = _clean_lines(lines)
    with transaction.atomic():
        source = _location(from_location, field="from_location")
        destination = _location(to_location, field="to_location")
        if source.pk == destination.pk:
            message = f"A transfer goes from one location to another, not to {source.code} itself."
            raise InvalidInput(Code.INVALID_TRANSFER, message, errors={"to_location": [message]})
        _require_active(source, destination)
        transfer = Transfer.objects.create(
            from_location=source,
            to_location=destination,
            note=note,
            created_by=actor.label[:200],
        )
        created = TransferLine.objects.bulk_create(
            [
                TransferLine(transfer=transfer, product_id=pid, quantity=qty)
                for pid, qty in sorted(cleaned.items())
            ]
        )
        _record(
            actor=actor,
            transfer=transfer,
            lines=created,
            action="transfer.created",
            changes={
                "status": {"before": None, "after": transfer.status},
                "from_location": {"before": None, "after": source.code},
                "to_location": {"before": None, "after": destination.code},
                "lines": {"before": None, "after": _lines_shown(cleaned)},
            }
            | ({"note": {"before": None, "after": note}} if note else {}),
        )
    return transfer


def _clean_note(note: str) -> str:
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise InvalidInput(
            Code.INVALID_TRANSFER,
            f"The note is text of at most {NOTE_MAX} characters.",
            errors={"note": [f"At most {NOTE_MAX} characters."]},
        )
    return note.strip()


def transfer_update(
    *,
    actor: Actor,
    transfer: Transfer | str | int,
    lines: Lines | None = None,
    note: str | None = None,
) -> Transfer:
    """Replace a draft transfer's lines (``None``: keep them) and note (``None``: keep it).

    Refuse (409) a transfer past its draft: what was dispatched is what the ledger says.
    """
    cleaned = _clean_lines(lines) if lines is not None else None
    note = _clean_note(note) if note is not None else None
    with transaction.atomic():
        transfer = _lock(transfer)
        _require_status(transfer, "changed", Status.DRAFT)
        current = {line.product_id: line for line in transfer.lines.all()}
        before = {pid: line.quantity for pid, line in current.items()}
        changes: dict[str, Any] = {}
        if cleaned is not None and cleaned != before:
            TransferLine.objects.filter(
                transfer=transfer, product_id__in=set(current) - set(cleaned)
            ).delete()
            changed = []
            for pid, quantity in cleaned.items():
                line = current.get(pid)
                if line is not None and line.quantity != quantity:
                    line.quantity = quantity
                    changed.append(line)
            TransferLine.objects.bulk_update(changed, ["quantity"])
            TransferLine.objects.bulk_create(
                [
                    TransferLine(transfer=transfer, product_id=pid, quantity=qty)
                    for pid, qty in sorted(cleaned.items())
                    if pid not in current
                ]
            )
            changes["lines"] = {"before": _lines_shown(before), "after": _lines_shown(cleaned)}
        if note is not None and note != transfer.note:
            changes["note"] = {"before": transfer.note, "after": note}
            transfer.note = note
        if not changes:
            return transfer
        transfer.save(update_fields=["note", "updated_at"])
        _record(
            actor=actor,
            transfer=transfer,
            lines=list(transfer.lines.all()),
            action="transfer.updated",
            changes=changes,
        )
    return transfer


def transfer_dispatch(*, actor: Actor, transfer: Transfer | str | int) -> Transfer:
    """Send a draft transfer: its goods leave the source location (``transfer_out``).

    Refuse (409 ``insufficient_stock``, each short line in ``extra["lines"]``) when the
    source does not have a line's quantity available (on hand and not reserved by open
    orders); (409) a transfer that is not a draft or an inactive location.
    """
    with transaction.atomic():
        transfer = _lock(transfer)
        _require_status(transfer, "dispatched", Status.DRAFT)
        source, destination = transfer.from_location, transfer.to_location
        _require_active(source, destination)
        lines = list(transfer.lines.select_related("product"))
        stocks = _lock_stock([line.product_id for line in lines], create_missing=False)
        levels = _lock_levels([(line.product_id, source.pk) for line in lines])
        short = []
        for line in lines:
            level = levels.get((line.product_id, source.pk))
            available = max(level.available, 0) if level is not None else 0
            if line.product_id not in stocks or available < line.quantity:
                short.append(
                    {
                        "product": line.product_id,
                        "sku": line.product.sku,
                        "requested": line.quantity,
                        "available": available,
                    }
                )
        if short:
            raise Conflict(
                Code.INSUFFICIENT_STOCK,
                f"{source.code} has not enough available to dispatch "
                + ", ".join(
                    f"{s['sku']} ({s['requested']} to send, {s['available']} available)"
                    for s in short
                )
                + ". Nothing was dispatched.",
                extra={"lines": short},
            )
        records = StockRecords()
        _apply(
            actor=actor,
            stocks=stocks,
            levels=levels,
            deltas=[_Delta(line.product_id, -line.quantity, 0, source.pk) for line in lines],
            kind=Kind.TRANSFER_OUT,
            reason=f"transfer to {destination.code}",
            reference=_reference(transfer),
            records=records,
        )
        transfer.dispatch(at=timezone.now())
        transfer.save()
        _record(
            actor=actor,
            transfer=transfer,
            lines=lines,
            action="transfer.dispatched",
            changes=_status_change(Status.DRAFT, transfer.status),
            records=records,
        )
    return transfer


def transfer_receive(
    *, actor: Actor, transfer: Transfer | str | int, lines: Lines | None = None
) -> Transfer:
    """Take in goods of a transfer in transit at its destination (``transfer_in``):
    ``lines`` (product → quantity), or ``None`` for everything still on the way.

    The transfer is received once every line has fully arrived; until then it stays in
    transit. Refuse (409 ``receipt_exceeds_outstanding``) more than is on the way, (400)
    a product the transfer does not carry, (409) a transfer not in transit or an
    inactive destination.
    """
    wanted = _clean_lines(lines) if lines is not None else None
    with transaction.atomic():
        transfer = _lock(transfer)
        _require_status(transfer, "received", Status.IN_TRANSIT)
        destination = transfer.to_location
        current = {line.product_id: line for line in transfer.lines.all()}
        if wanted is None:
            wanted = {pid: line.outstanding for pid, line in current.items() if line.outstanding}
        _check_receipt(transfer, current, wanted)
        _require_active(destination)
        stocks = _lock_stock(wanted, create_missing=True)
        levels = _lock_levels([(pid, destination.pk) for pid in wanted], create_missing=True)
        records = StockRecords()
        _apply(
            actor=actor,
            stocks=stocks,
            levels=levels,
            deltas=[_Delta(pid, qty, 0, destination.pk) for pid, qty in sorted(wanted.items())],
            kind=Kind.TRANSFER_IN,
            reason=f"transfer from {transfer.from_location.code}",
            reference=_reference(transfer),
            records=records,
        )
        for pid, qty in wanted.items():
            current[pid].received_quantity += qty
        TransferLine.objects.bulk_update([current[pid] for pid in wanted], ["received_quantity"])
        before = transfer.status
        complete = all(line.outstanding == 0 for line in current.values())
        if complete:
            transfer.receive(at=timezone.now())
        transfer.save()
        _record(
            actor=actor,
            transfer=transfer,
            lines=list(current.values()),
            action="transfer.received",
            changes={"received": {"before": None, "after": _lines_shown(wanted)}}
            | (_status_change(before, transfer.status) if complete else {}),
            records=records,
            extra={
                "arrived": [
                    {"product": pid, "quantity": qty} for pid, qty in sorted(wanted.items())
                ],
                "complete": complete,
            },
        )
    return transfer


def _check_receipt(
    transfer: Transfer, current: dict[int, TransferLine], wanted: dict[int, int]
) -> None:
    """Refuse (400) a product the transfer does not carry, (409) more than is on the way."""
    foreign = sorted(set(wanted) - set(current))
    if foreign:
        message = f"Transfer {transfer.number} carries no product {', '.join(map(str, foreign))}."
        raise InvalidInput(Code.INVALID_TRANSFER, message, errors={"lines": [message]})
    over = [
        {"product": pid, "requested": qty, "outstanding": current[pid].outstanding}
        for pid, qty in sorted(wanted.items())
        if qty > current[pid].outstanding
    ]
    if over:
        raise Conflict(
            Code.RECEIPT_EXCEEDS_OUTSTANDING,
            "More than was sent: "
            + ", ".join(
                f"product {o['product']} ({o['requested']} received, {o['outstanding']} on the way)"
                for o in over
            )
            + ". Nothing was received.",
            extra={"lines": over},
        )


def transfer_cancel(*, actor: Actor, transfer: Transfer | str | int) -> Transfer:
    """Cancel a draft (nothing moves) or a transfer in transit: what has not arrived goes
    back on hand at the source (``transfer_in``, reason "transfer cancelled"); what has
    arrived stays at the destination.

    Refuse (409) a received or cancelled transfer, and one in transit whose source is no
    longer active (the goods would have nowhere to go back to).
    """
    with transaction.atomic():
        transfer = _lock(transfer)
        _require_status(transfer, "cancelled", Status.DRAFT, Status.IN_TRANSIT)
        before = transfer.status
        lines = list(transfer.lines.all())
        returned = (
            {line.product_id: line.outstanding for line in lines if line.outstanding}
            if before == Status.IN_TRANSIT
            else {}
        )
        records = StockRecords()
        if returned:
            source = transfer.from_location
            _require_active(source)
            stocks = _lock_stock(returned, create_missing=True)
            levels = _lock_levels([(pid, source.pk) for pid in returned], create_missing=True)
            _apply(
                actor=actor,
                stocks=stocks,
                levels=levels,
                deltas=[_Delta(pid, qty, 0, source.pk) for pid, qty in sorted(returned.items())],
                kind=Kind.TRANSFER_IN,
                reason="transfer cancelled",
                reference=_reference(transfer),
                records=records,
            )
        transfer.cancel(at=timezone.now())
        transfer.save()
        _record(
            actor=actor,
            transfer=transfer,
            lines=lines,
            action="transfer.cancelled",
            changes=_status_change(before, transfer.status)
            | ({"returned": {"before": None, "after": _lines_shown(returned)}} if returned else {}),
            records=records,
            extra={
                "returned": [
                    {"product": pid, "quantity": qty} for pid, qty in sorted(returned.items())
                ]
            },
        )
    return transfer
