from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Registers on import; its rules use models, importable only once apps are ready.
        from orders import topics  # noqa: F401
