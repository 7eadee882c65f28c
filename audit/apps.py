from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # Registers on import, as the domains' topics do.
        from audit import topics  # noqa: F401
