"""The settings inventory obeys, registered with the settings service."""

from django.conf import settings

from inventory.models import ALLOCATION_STRATEGIES, ALLOCATION_STRATEGY_SETTING, LOW_STOCK_SETTING
from pms_backend.shopsettings.registry import SettingType, Tunable, register_tunables

register_tunables(
    Tunable(
        key=LOW_STOCK_SETTING,
        type=SettingType.INT,
        default=lambda: settings.PMS_LOW_STOCK_THRESHOLD,
        description=(
            "Stock is low (and stock.low fires) when the available quantity falls to "
            "this number or below. Can be set per product."
        ),
        minimum=0,
        maximum=1_000_000,
        scope="product",  # registered by catalog (catalog/settings_registry.py)
    ),
)


def _check_strategy(value: str) -> None:
    if value not in ALLOCATION_STRATEGIES:
        raise ValueError(f"must be one of {', '.join(ALLOCATION_STRATEGIES)}")


register_tunables(
    Tunable(
        key=ALLOCATION_STRATEGY_SETTING,
        type=SettingType.STRING,
        default=lambda: "priority",
        description=(
            "Where an order's units are reserved: 'priority' takes them from the active "
            "location with the lowest priority number first, 'most_stock' from the one "
            "holding most; a line splits over locations when one does not hold enough."
        ),
        max_length=20,
        check=_check_strategy,
    ),
)
