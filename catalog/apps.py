from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        # Registers this app's parts into the platform's registries (settings, event topics);
        # imported here because they use models, importable only once apps are ready.
        from catalog import settings_registry, topics  # noqa: F401
