"""The settings' event topic. Sensitive values arrive masked. Webhooks only: websockets
offer no "settings" topic."""

from pms_backend.apikeys import scopes
from pms_backend.events.registry import Topic, register_topic

register_topic(
    Topic(
        name="settings",
        event_types=("settings.updated",),
        read_scope=scopes.SETTINGS_MANAGE,
        full_scope=scopes.SETTINGS_MANAGE,
        live=False,
    )
)
