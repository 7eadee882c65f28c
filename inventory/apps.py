from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        # Registers on import; its rules use models, importable only once apps are ready.
        from inventory import topics  # noqa: F401
