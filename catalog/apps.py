from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        # Registers on import; its rules use models, importable only once apps are ready.
        from catalog import topics  # noqa: F401
