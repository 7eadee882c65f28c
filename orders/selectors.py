from django.db.models import Prefetch, QuerySet

from orders.models import Order, OrderItem


def order_list(*, api_key=None) -> QuerySet[Order]:
    """Return orders with their items; only ``api_key``'s own orders when one is given."""
    qs = Order.objects.prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.order_by("id"))
    )
    if api_key is not None:
        qs = qs.filter(api_key=api_key)
    return qs
