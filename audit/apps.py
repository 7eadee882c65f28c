from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # Registers on import, as the domains' topics do.
        from audit import topics  # noqa: F401

        # Each app's names of its audit actions (``<app>/audit_actions.py``), found as the
        # admin finds ``admin.py``: the audit app names no domain.
        autodiscover_modules("audit_actions")
