"""Stock locations: the only write path for ``Location``. Each write is one transaction
holding the change, its audit entry and its ``location.*`` event.

A location that holds stock (on hand or reserved at any of its levels) can be neither
deactivated nor deleted: its stock is transferred out first, so the shop's totals are
always what its active locations can sell. One that the ledger or an order names cannot
be deleted (the history must keep it); it can be deactivated. The shop keeps at least
one active location: orders and unplaced movements need somewhere to happen.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Count, ProtectedError, Q, Sum

from audit.actors import Actor
from audit.changes import diff, snapshot
from audit.services import audit_record
from inventory.errors import InventoryErrorCode as Code
from inventory.models import Location, StockLevel, Transfer
from inventory.payloads import location_representation
from pms_backend.errors import Conflict, InvalidInput, NotFound
from pms_backend.events.services import publish
from pms_backend.plurals import counted

LOCATION_FIELDS = ["code", "name", "address", "is_active", "priority"]


def location_create(
    *,
    actor: Actor,
    code: str,
    name: str,
    address: str = "",
    priority: int = 100,
    is_active: bool = True,
) -> Location:
    """Create a location. Raise ``InvalidInput`` for a bad field, ``Conflict``
    (``location_code_taken``) when another location has the code."""
    location = Location(
        code=code, name=name, address=address, priority=priority, is_active=is_active
    )
    _validate(location)
    with transaction.atomic():
        _check_code_free(code)
        try:
            with transaction.atomic():
                location.save()
        except IntegrityError as exc:  # a concurrent create took the code first
            raise _code_taken(code) from exc
        audit_record(
            actor=actor,
            action="location.created",
            target=location,
            changes=diff({}, snapshot(location, LOCATION_FIELDS)),
        )
        publish("location.created", location_representation(location), subject=_subject(location))
    return location


def location_update(*, actor: Actor, code: str, data: dict[str, Any]) -> Location:
    """Change a location's ``name``, ``address``, ``priority``, ``is_active`` or ``code``.

    Deactivating refuses (409) a location that holds stock (``location_holds_stock``) and
    the shop's last active location (``last_active_location``).
    """
    unknown = sorted(set(data) - set(LOCATION_FIELDS))
    if unknown:
        raise InvalidInput(
            Code.INVALID_LOCATION,
            f"A location has no field {', '.join(unknown)} to change.",
            errors={name: ["Unknown field."] for name in unknown},
        )
    with transaction.atomic():
        location = _lock(code)
        before = snapshot(location, LOCATION_FIELDS)
        for name, value in data.items():
            setattr(location, name, value)
        _validate(location)
        changes = diff(before, snapshot(location, LOCATION_FIELDS))
        if not changes:
            return location
        if "code" in changes:
            _check_code_free(location.code, exclude_pk=location.pk)
        if "is_active" in changes and not location.is_active:
            _check_may_leave(location, "deactivate")
        try:
            with transaction.atomic():
                location.save()
        except IntegrityError as exc:
            raise _code_taken(location.code) from exc
        audit_record(actor=actor, action="location.updated", target=location, changes=changes)
        publish("location.updated", location_representation(location), subject=_subject(location))
    return location


def location_delete(*, actor: Actor, code: str) -> None:
    """Delete a location nothing names. Refuse (409) one holding stock
    (``location_holds_stock``), one the ledger or an order names (``location_in_use``:
    deactivate it instead) and the shop's last active location."""
    with transaction.atomic():
        location = _lock(code)
        _check_may_leave(location, "delete")
        uses = _uses(location)
        if uses:
            raise _in_use(location, uses)
        data, subject = location_representation(location), _subject(location)
        audit_record(
            actor=actor,
            action="location.deleted",
            target=location,
            changes=diff(snapshot(location, LOCATION_FIELDS), {}),
        )
        # Levels holding nothing (as the migration to locations made them) keep nothing;
        # one locked by a change under way means the location is being used right now.
        try:
            empty = list(
                StockLevel.objects.select_for_update(nowait=True)
                .filter(location=location)
                .values_list("pk", flat=True)
            )
        except OperationalError as exc:
            raise Conflict(
                Code.LOCATION_IN_USE,
                f"Cannot delete location {location.code}: a stock change there is under way. "
                "Try again.",
            ) from exc
        StockLevel.objects.filter(pk__in=empty).delete()
        try:
            with transaction.atomic():
                location.delete()
        except ProtectedError as exc:  # something newer than this check names it
            raise _in_use(location, "records") from exc
        publish("location.deleted", data | {"deleted": True}, subject=subject)


def location_stock_held(location: Location) -> dict[str, int]:
    """Return what ``location`` holds: ``{"products", "on_hand", "reserved"}`` (one query)."""
    held = StockLevel.objects.filter(location=location).aggregate(
        products=Count("pk", filter=Q(on_hand__gt=0) | Q(reserved__gt=0)),
        on_hand=Sum("on_hand"),
        reserved=Sum("reserved"),
    )
    return {name: held[name] or 0 for name in ("products", "on_hand", "reserved")}


def _lock(code: str) -> Location:
    """Lock and return the location ``code``; location writes queue behind each other.

    Every location is locked (in primary-key order) against other location writes, so two
    staff deactivating the last two active locations at once cannot both see the other
    one still active: ``FOR NO KEY UPDATE``, which does not stop movements and orders
    naming those locations. The location itself is locked ``FOR UPDATE``: that waits for
    the changes under way that have written a row naming it (their foreign keys hold a
    key-share lock on it), so their stock is seen before deciding it holds none.
    """
    pks = list(
        Location.objects.select_for_update(no_key=True).order_by("pk").values_list("pk", "code")
    )
    pk = next((pk for pk, found in pks if found == code), None)
    if pk is None:
        raise NotFound(Code.UNKNOWN_LOCATION, f"No stock location is {code!r}.")
    return Location.objects.select_for_update().get(pk=pk)


def _validate(location: Location) -> None:
    try:
        location.full_clean(exclude=["created_at", "updated_at"], validate_unique=False)
    except ValidationError as exc:
        errors = exc.message_dict
        raise InvalidInput(
            Code.INVALID_LOCATION,
            "Invalid location: "
            + "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()),
            errors=errors,
        ) from exc


def _check_code_free(code: str, *, exclude_pk: int | None = None) -> None:
    others = Location.objects.filter(code=code)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise _code_taken(code)


def _code_taken(code: str) -> Conflict:
    return Conflict(
        Code.LOCATION_CODE_TAKEN,
        f"Another location has the code {code!r}.",
        errors={"code": ["Already in use."]},
    )


def _check_may_leave(location: Location, verb: str) -> None:
    """Refuse to deactivate or delete a location holding stock, or the last active one."""
    held = location_stock_held(location)
    if held["on_hand"] or held["reserved"]:
        reserved = ""
        if held["reserved"]:
            reserved = f", {held['reserved']:,} of them reserved by open orders"
        raise Conflict(
            Code.LOCATION_HOLDS_STOCK,
            f"Cannot {verb} location {location.code}: it holds "
            f"{counted(held['on_hand'], 'unit')} of {counted(held['products'], 'product')}"
            f"{reserved}. Transfer its stock first.",
            extra={"held": held},
        )
    moving = sorted(
        Transfer.objects.filter(
            Q(from_location=location) | Q(to_location=location),
            status=Transfer.Status.IN_TRANSIT,
        ).values_list("number", flat=True)
    )
    if moving:
        # Goods on the way could then be neither received nor sent back.
        raise Conflict(
            Code.LOCATION_TRANSFERS_IN_TRANSIT,
            f"Cannot {verb} location {location.code}: {counted(len(moving), 'transfer')} "
            f"from or to it {'is' if len(moving) == 1 else 'are'} in transit "
            f"({', '.join(moving[:10])}). Receive or cancel them first.",
            extra={"transfers": moving},
        )
    if (location.is_active or verb == "deactivate") and not Location.objects.filter(
        is_active=True
    ).exclude(pk=location.pk).exists():
        raise Conflict(
            Code.LAST_ACTIVE_LOCATION,
            f"Cannot {verb} location {location.code}: it is the shop's last active location, "
            "where orders reserve stock. Add or activate another one first.",
        )


def _uses(location: Location) -> str:
    """Say what names ``location`` (movements, order allocations, transfers), or ""."""
    movements = location.movements.count()
    allocations = location.allocations.count()  # orders.LineAllocation
    transfers = Transfer.objects.filter(Q(from_location=location) | Q(to_location=location)).count()
    named = []
    if movements:
        named.append(counted(movements, "stock movement"))
    if allocations:
        named.append(counted(allocations, "order line allocation"))
    if transfers:
        named.append(counted(transfers, "transfer"))
    return " and ".join(named)


def _in_use(location: Location, uses: str) -> Conflict:
    return Conflict(
        Code.LOCATION_IN_USE,
        f"Cannot delete location {location.code}: {uses} name it, and the history must "
        "keep it. Deactivate it instead.",
    )


def _subject(location: Location) -> str:
    return f"location:{location.pk}"
