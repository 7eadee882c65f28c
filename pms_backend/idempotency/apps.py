from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    name = "pms_backend.idempotency"
    label = "idempotency"
    verbose_name = "Idempotency keys"
