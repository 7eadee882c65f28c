"""The settings inventory obeys, registered with the settings service."""

from django.conf import settings

from inventory.models import LOW_STOCK_SETTING
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
