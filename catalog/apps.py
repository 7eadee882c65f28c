from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        # Registers this app's parts into the platform's registries.
        from catalog import settings_registry  # noqa: F401
