from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Registers this app's parts into the platform's registries.
        from orders import monitoring, settings_registry  # noqa: F401
