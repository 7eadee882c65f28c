from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from orders.models import (
    Fulfillment,
    FulfillmentLine,
    LineAllocation,
    Order,
    OrderItem,
    Refund,
    RefundLine,
    Return,
    ReturnLine,
)


def fulfillments_shown() -> QuerySet[Fulfillment]:
    """Return fulfilments with what their representation reads (location, lines and the
    lines' items) fetched with them: two queries for any number."""
    return Fulfillment.objects.select_related("location").prefetch_related(
        Prefetch("lines", queryset=FulfillmentLine.objects.select_related("item"))
    )


def order_list(*, api_key=None) -> QuerySet[Order]:
    """Return orders with their items and fulfilments; only ``api_key``'s own orders when
    one is given."""
    qs = Order.objects.prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.order_by("id")),
        Prefetch("fulfillments", queryset=fulfillments_shown()),
    )
    if api_key is not None:
        qs = qs.filter(api_key=api_key)
    return qs


def _summed(model, field: str):
    return Coalesce(
        Subquery(
            model.objects.filter(item=OuterRef("pk"))
            .order_by()
            .values("item")
            .annotate(total=Sum(field))
            .values("total")
        ),
        0,
    )


def lines_not_allocated() -> list[tuple[int, str]]:
    """Return (product_id, problem) for each order line whose allocations (where its units
    are still reserved, or were released when cancelled), waiting units and shipped
    units do not add up to its quantity; each completed or refunded line with units still
    waiting (they were never sold); and each line whose shipped units are not what its
    fulfilments carry."""
    rows = (
        OrderItem.objects.annotate(
            allocated=_summed(LineAllocation, "quantity"),
            shipped=_summed(FulfillmentLine, "quantity"),
        )
        .filter(
            (
                Q(stock_tracked=True)
                & ~Q(quantity=F("allocated") + F("backordered") + F("quantity_fulfilled"))
            )
            | Q(
                backordered__gt=0,
                order__status__in=[Order.Status.COMPLETED, Order.Status.REFUNDED],
            )
            | ~Q(shipped=F("quantity_fulfilled"))
        )
        .order_by("product_id", "pk")
        .values_list(
            "product_id",
            "order__number",
            "quantity",
            "allocated",
            "backordered",
            "quantity_fulfilled",
            "shipped",
        )
    )
    return [
        (
            product_id,
            f"order {number} has {quantity} on its line, allocated {allocated}"
            + (f", {waiting} waiting" if waiting else "")
            + (f", {fulfilled} shipped" if fulfilled else "")
            + (f", its fulfilments carry {shipped}" if shipped != fulfilled else ""),
        )
        for product_id, number, quantity, allocated, waiting, fulfilled, shipped in rows
    ]


def backordered_units() -> dict[int, int]:
    """Return ``{product_id: Σ backordered}`` over the lines of open orders: the units
    waiting for stock, which the stock rows count (inventory's check compares them)."""
    return dict(
        OrderItem.objects.filter(backordered__gt=0, order__status__in=Order.OPEN_STATUSES)
        .values("product_id")
        .annotate(units=Sum("backordered"))
        .values_list("product_id", "units")
    )


def open_order_quantities() -> dict[tuple[int, int], int]:
    """Return ``{(product_id, location_id): Σ quantity}`` over the lines of open
    (pending/processing) orders, where they were reserved: the stock they hold."""
    return {
        (product_id, location_id): quantity
        for product_id, location_id, quantity in LineAllocation.objects.filter(
            item__order__status__in=Order.OPEN_STATUSES
        )
        .values("item__product_id", "location_id")
        .annotate(quantity=Sum("quantity"))
        .values_list("item__product_id", "location_id", "quantity")
    }


def refund_list(*, order: Order) -> QuerySet[Refund]:
    """Return the order's refunds, oldest first, with their lines and return (3 queries
    however many)."""
    return (
        Refund.objects.filter(order=order)
        .select_related("order", "rma")
        .prefetch_related(
            Prefetch("lines", queryset=RefundLine.objects.select_related("item").order_by("id"))
        )
        .order_by("created_at", "id")
    )


def return_list(*, order: Order) -> QuerySet[Return]:
    """Return the order's returns, oldest first, with their lines (and where their units
    were restocked) and refund (2 queries however many)."""
    return (
        Return.objects.filter(order=order)
        .select_related("order", "refund")
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=ReturnLine.objects.select_related("item", "location").order_by("id"),
            )
        )
        .order_by("created_at", "id")
    )
