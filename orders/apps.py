from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Imported here: modules that load models wait for the app registry (Django's rule).
        from inventory.integrity import register_reservation_holder
        from orders.selectors import open_order_quantities

        register_reservation_holder("open (pending/processing) orders", open_order_quantities)
