"""Every tunable of the shop: its type, default, bounds and meaning.

A fresh install runs on the defaults, which are read from Django settings at call time
(so the environment and ``override_settings`` keep working). A stored value, global or
for one product where the tunable allows it, replaces the default once it has passed
the same checks (``Tunable.clean``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.conf import settings

from pms_backend.api.ratelimit import Rate


class SettingType(StrEnum):
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    STRING = "string"
    JSON = "json"
    SECRET = "secret"  # noqa: S105 - a type name, not a password


MASK = "***"
MAX_JSON_CHARS = 10_000
# The most lines an order may ever have: the API refuses longer bodies before reading
# them, whatever orders.max_lines says.
ORDER_LINES_CEILING = 1000


@dataclass(frozen=True)
class Tunable:
    key: str
    type: SettingType
    default: Callable[[], Any]
    description: str
    minimum: int | Decimal | None = None
    maximum: int | Decimal | None = None
    max_length: int = 500
    # Raises ValueError with a sentence saying what is wrong.
    check: Callable[[Any], None] | None = None
    per_product: bool = False
    sensitive: bool = False

    @property
    def is_sensitive(self) -> bool:
        return self.sensitive or self.type == SettingType.SECRET

    def default_value(self) -> Any:
        return self.default()

    def clean(self, value: Any) -> Any:
        """Return ``value`` in its canonical form; raise ``ValueError`` saying what is wrong."""
        kind = self.type
        if kind == SettingType.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("must be a whole number")
            self._check_range(value)
        elif kind == SettingType.DECIMAL:
            value = self._decimal(value)
            self._check_range(value)
        elif kind == SettingType.BOOL:
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
        elif kind in (SettingType.STRING, SettingType.SECRET):
            if not isinstance(value, str):
                raise ValueError("must be a string")
            if kind == SettingType.SECRET and not value:
                raise ValueError("must not be empty")
            if len(value) > self.max_length:
                raise ValueError(f"must be at most {self.max_length} characters")
        elif kind == SettingType.JSON:
            if value is None:
                raise ValueError("must not be null")
            try:
                text = json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError("must be JSON") from exc
            if len(text) > MAX_JSON_CHARS:
                raise ValueError(f"must be at most {MAX_JSON_CHARS} characters as JSON")
        if self.check is not None:
            self.check(value)
        return value

    def dump(self, value: Any) -> str:
        """Return a clean value as the JSON text the database keeps."""
        if self.type == SettingType.DECIMAL:
            value = str(value)  # a JSON number would go through float
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def load(self, text: str) -> Any:
        """Return the value kept as ``text``; raise ``ValueError`` if it no longer fits."""
        value = json.loads(text)
        return self.clean(value)

    def _decimal(self, value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValueError("must be a decimal number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite decimal number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError("must be a decimal number") from exc
        if not number.is_finite():
            raise ValueError("must be a finite decimal number")
        return number

    def _check_range(self, value: int | Decimal) -> None:
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                raise ValueError(f"must be from {low} to {high}")
            if low is not None:
                raise ValueError(f"must be at least {low}")
            raise ValueError(f"must be at most {high}")


def _rate(value: str) -> None:
    rate = Rate.parse(value)  # its ValueError already says what a rate looks like
    if rate.count < 1:
        raise ValueError("must allow at least one request per period")


TUNABLES: dict[str, Tunable] = {
    t.key: t
    for t in (
        Tunable(
            key="orders.reservation_minutes",
            type=SettingType.INT,
            default=lambda: settings.PMS_RESERVATION_MINUTES,
            description="How long a new pending order holds its stock, in minutes.",
            minimum=1,
            maximum=1440,
        ),
        Tunable(
            key="orders.max_lines",
            type=SettingType.INT,
            default=lambda: settings.PMS_ORDER_MAX_LINES,
            description="The most different products one order may hold.",
            minimum=1,
            maximum=ORDER_LINES_CEILING,
        ),
        Tunable(
            key="orders.max_quantity_per_line",
            type=SettingType.INT,
            default=lambda: settings.PMS_ORDER_MAX_QUANTITY,
            description="The most units of one product one order may hold.",
            minimum=1,
            maximum=1_000_000,
        ),
        Tunable(
            key="inventory.low_stock_threshold",
            type=SettingType.INT,
            default=lambda: settings.PMS_LOW_STOCK_THRESHOLD,
            description=(
                "Stock is low (and stock.low fires) when the available quantity falls to "
                "this number or below. Can be set per product."
            ),
            minimum=0,
            maximum=1_000_000,
            per_product=True,
        ),
        Tunable(
            key="webhooks.event_retention_days",
            type=SettingType.INT,
            default=lambda: settings.PMS_EVENT_RETENTION_DAYS,
            description="Days an event is kept once every delivery of it has succeeded.",
            minimum=1,
            maximum=3650,
        ),
        Tunable(
            key="ratelimit.orders_per_minute",
            type=SettingType.STRING,
            default=lambda: settings.PMS_RATE_LIMITS["orders"],
            description=(
                "Order placements allowed per API key or staff user, as count/period "
                "('120/minute', '10/5m')."
            ),
            max_length=40,
            check=_rate,
        ),
    )
}
