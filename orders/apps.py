from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Imported here, not at the top: modules that load models wait for the app registry
        # (Django's rule for AppConfig modules).
        from inventory.integrity import (  # loads models
            register_holder_check,
            register_reservation_holder,
            register_waiting_holder,
        )
        from inventory.services import register_arrival_hook  # loads models
        from orders import demo, monitoring, settings_registry, topics  # noqa: F401  # registrations
        from orders.backorders import backorders_allocate  # loads models
        from orders.selectors import (  # loads models
            backordered_units,
            lines_not_allocated,
            open_order_quantities,
        )

        register_reservation_holder("open (pending/processing) orders", open_order_quantities)
        register_holder_check("order lines", lines_not_allocated)
        register_waiting_holder("open orders' backordered lines", backordered_units)
        # Stock that arrives goes to the lines waiting for it, first come first served.
        register_arrival_hook(backorders_allocate)
