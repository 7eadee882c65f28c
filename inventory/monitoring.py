"""What inventory contributes to monitoring: stock metrics and the dashboard's Stock section."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, DecimalField, ExpressionWrapper, F, IntegerField, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse

from catalog.models import Product
from inventory.models import LOW_STOCK_SETTING, Location, Stock, StockLevel
from pms_backend.monitoring.dashboard import snapshot_value
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.registry import (
    DashboardSection,
    register_dashboard_section,
    register_level_metrics,
)
from pms_backend.monitoring.services import money
from pms_backend.shopsettings.selectors import (
    setting_get,
    setting_get_many,
    setting_object_values,
)

# Levels: the last reading taken during the period.
STOCK_VALUE = "stock.value"
STOCK_LOW = "stock.low"
STOCK_OUT = "stock.out"

LISTED_PRODUCTS = 50  # products named in a low- or out-of-stock snapshot
PERMISSION = "catalog.view_product"


@register_level_metrics
def stock_levels(now: datetime) -> dict[str, tuple[Any, dict]]:
    """Stock value (on hand x price) and the published products low or out of stock."""
    value_by_currency = {
        row["product__currency"]: row["value"]
        for row in Stock.objects.order_by()
        .values("product__currency")
        .annotate(
            value=Sum(
                ExpressionWrapper(
                    F("on_hand") * F("product__price"),
                    output_field=DecimalField(max_digits=20, decimal_places=2),
                )
            )
        )
    }
    low, out = _stock_shortages()
    return {
        STOCK_VALUE: (
            money(value_by_currency.get(settings.PMS_DEFAULT_CURRENCY)),
            {"currencies": {c: str(money(v)) for c, v in sorted(value_by_currency.items())}},
        ),
        STOCK_LOW: low,
        STOCK_OUT: out,
    }


def _stock_shortages() -> tuple[tuple[int, dict], tuple[int, dict]]:
    """Return the low-stock and out-of-stock readings of the published catalog.

    Out of stock: nothing available (a product without a stock row has none). Low: some
    available, but no more than the product's low-stock threshold (settings service).
    """
    shop_threshold = setting_get(LOW_STOCK_SETTING)
    own_thresholds = setting_object_values(LOW_STOCK_SETTING)
    # Only products at or below the highest threshold in force can be short.
    bound = max([shop_threshold, *own_thresholds.values()])
    candidates = list(
        Product.objects.filter(status=Product.Status.PUBLISHED)
        .annotate(
            available=ExpressionWrapper(
                Coalesce(F("stock__on_hand"), 0) - Coalesce(F("stock__reserved"), 0),
                output_field=IntegerField(),
            )
        )
        .filter(available__lte=bound)
        .order_by("available", "name", "id")
        .values("id", "sku", "name", "available")
    )
    thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids=[p["id"] for p in candidates])
    low, out = [], []
    for product in candidates:
        threshold = thresholds[product["id"]]
        if product["available"] <= 0:
            out.append(product | {"threshold": threshold})
        elif product["available"] <= threshold:
            low.append(product | {"threshold": threshold})
    return (
        (len(low), {"products": low[:LISTED_PRODUCTS]}),
        (len(out), {"products": out[:LISTED_PRODUCTS]}),
    )


def stock_by_location() -> list[dict[str, Any]]:
    """Return each active location's stock now, in allocation order: units on hand,
    reserved and available there, and how many published products it holds are low or
    out there. Two queries, however many locations and products.

    A product counts at a location it has a level at (it was stocked there): out when
    nothing is available there, low when some is but no more than its low-stock
    threshold. A product a location never held is not "out" there.
    """
    published = Q(stock_levels__product__status=Product.Status.PUBLISHED)
    rows = list(
        Location.objects.filter(is_active=True)
        .order_by("priority", "id")
        .values("id", "code", "name")
        .annotate(
            on_hand=Coalesce(Sum("stock_levels__on_hand"), 0),
            reserved=Coalesce(Sum("stock_levels__reserved"), 0),
            out=Count(
                "stock_levels",
                filter=published & Q(stock_levels__on_hand__lte=F("stock_levels__reserved")),
            ),
        )
    )
    shop_threshold = setting_get(LOW_STOCK_SETTING)
    bound = max([shop_threshold, *setting_object_values(LOW_STOCK_SETTING).values()])
    # Only levels with some available, at or below the highest threshold in force, can be low.
    candidates = list(
        StockLevel.objects.filter(
            location__is_active=True, product__status=Product.Status.PUBLISHED
        )
        .annotate(free=ExpressionWrapper(F("on_hand") - F("reserved"), output_field=IntegerField()))
        .filter(free__gt=0, free__lte=bound)
        .values_list("location_id", "product_id", "free")
    )
    thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids={p for _, p, _ in candidates})
    low: dict[int, int] = {}
    for location_id, product_id, free in candidates:
        if free <= thresholds[product_id]:
            low[location_id] = low.get(location_id, 0) + 1
    return [
        row | {"available": row["on_hand"] - row["reserved"], "low": low.get(row["id"], 0)}
        for row in rows
    ]


def stock_section(days: int, now: datetime, latest: dict[str, MetricSnapshot]) -> dict[str, Any]:
    """The dashboard's Stock section: value, the products low or out of stock, and the
    stock at each location now (read live: two queries)."""

    def listed(name: str) -> list[dict]:
        snapshot = latest.get(name)
        products = snapshot.data.get("products", []) if snapshot else []
        return [
            p | {"url": reverse("admin:catalog_product_change", args=[p["id"]])} for p in products
        ]

    value = latest.get(STOCK_VALUE)
    return {
        "value": snapshot_value(value).quantize(Decimal("0.01")),
        "value_by_currency": value.data.get("currencies", {}) if value else {},
        "low_count": int(snapshot_value(latest.get(STOCK_LOW))),
        "out_count": int(snapshot_value(latest.get(STOCK_OUT))),
        "low": listed(STOCK_LOW),
        "out": listed(STOCK_OUT),
        "locations": stock_by_location(),
    }


register_dashboard_section(
    DashboardSection(
        name="stock",
        permission=PERMISSION,
        levels=(STOCK_VALUE, STOCK_LOW, STOCK_OUT),
        build=stock_section,
        template="inventory/dashboard_section.html",
        position=20,
    )
)
