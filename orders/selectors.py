from django.db.models import Prefetch, QuerySet, Sum

from orders.models import Order, OrderItem


def order_list(*, api_key=None) -> QuerySet[Order]:
    """Return orders with their items; only ``api_key``'s own orders when one is given."""
    qs = Order.objects.prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.order_by("id"))
    )
    if api_key is not None:
        qs = qs.filter(api_key=api_key)
    return qs


def open_order_quantities() -> dict[int, int]:
    """Return ``{product_id: Σ quantity}`` over the lines of open (pending/processing) orders:
    the stock they hold reserved."""
    return dict(
        OrderItem.objects.filter(order__status__in=Order.OPEN_STATUSES)
        .values("product_id")
        .annotate(quantity=Sum("quantity"))
        .values_list("product_id", "quantity")
    )
