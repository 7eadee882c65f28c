from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        # Registers this app's parts: into the platform's registries (monitoring, settings)
        # and the product file's stock column into the catalog's import and export.
        from inventory import importing, monitoring, settings_registry  # noqa: F401
