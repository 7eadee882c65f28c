from django.apps import AppConfig


class OutboundConfig(AppConfig):
    name = "pms_backend.outbound"
    label = "outbound"
    verbose_name = "Outgoing HTTP"
