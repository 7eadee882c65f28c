"""The settings orders obey, registered with the settings service."""

from django.conf import settings

from pms_backend.shopsettings.registry import SettingType, Tunable, register_tunables

# The most lines an order may ever have: the API refuses longer bodies before reading
# them, whatever orders.max_lines says.
ORDER_LINES_CEILING = 1000

register_tunables(
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
)
