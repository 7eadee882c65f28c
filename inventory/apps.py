from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        # Registers this app's parts into the platform's registries.
        from inventory import monitoring, settings_registry  # noqa: F401
