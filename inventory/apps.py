from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        # Registers this app's parts: into the platform's registries (monitoring, settings,
        # event topics) and the product file's stock column into the catalog's import and
        # export; imported here because they use models, importable only once apps are ready.
        from inventory import demo, importing, monitoring, settings_registry, topics  # noqa: F401
