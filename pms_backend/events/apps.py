from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "pms_backend.events"
    label = "events"
    verbose_name = "Event outbox"
