from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Imported here, not at the top: modules that load models wait for the app registry
        # (Django's rule for AppConfig modules).
        from inventory.integrity import register_reservation_holder  # loads models
        from orders import demo, monitoring, settings_registry, topics  # noqa: F401  # registrations
        from orders.selectors import open_order_quantities  # loads models

        register_reservation_holder("open (pending/processing) orders", open_order_quantities)
