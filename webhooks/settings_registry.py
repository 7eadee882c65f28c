"""The settings webhooks obey, registered with the settings service."""

from django.conf import settings

from pms_backend.shopsettings.registry import SettingType, Tunable, register_tunables

register_tunables(
    Tunable(
        key="webhooks.event_retention_days",
        type=SettingType.INT,
        default=lambda: settings.PMS_EVENT_RETENTION_DAYS,
        description="Days an event is kept once every delivery of it has succeeded.",
        minimum=1,
        maximum=3650,
    ),
)
