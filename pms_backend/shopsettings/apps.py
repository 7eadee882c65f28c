from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SettingsConfig(AppConfig):
    name = "pms_backend.shopsettings"
    # The label names the permission staff need: settings.change_setting.
    label = "settings"
    verbose_name = "Settings"

    def ready(self) -> None:
        from pms_backend.shopsettings import topics  # noqa: F401  (registers on import)

        post_migrate.connect(sync_registry_after_migrate, sender=self)


def sync_registry_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """Give each tunable its row, so the admin lists every setting from the start."""
    # Imported when called: services loads models, which this module (imported while the
    # app registry is being populated) must not.
    from pms_backend.shopsettings.services import settings_sync_registry

    settings_sync_registry(using=using)
