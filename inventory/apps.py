from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        # Registers this app's parts: into the platform's registries (monitoring, settings,
        # event topics) and the product file's stock column into the catalog's import and
        # export, the guard against variants of a product holding stock of its own, the
        # stock row of a product taking backorders, what is available of each variant into
        # the product's representation, and which products are in stock into search;
        # imported here because they use models, importable only once apps are ready.
        from catalog.availability import (
            register_availability_reader,
            register_in_stock_condition,
        )
        from catalog.backorders import register_waiting_enabled  # loads models
        from catalog.variants import register_variant_guard  # loads models
        from inventory import demo, importing, monitoring, settings_registry, topics  # noqa: F401
        from inventory.selectors import available_units, in_stock_condition  # loads models
        from inventory.services import refuse_variants_of_stocked, stock_make_rows  # loads models

        register_variant_guard(refuse_variants_of_stocked)
        # A product taking orders beyond stock gets its stock row, where they are counted.
        register_waiting_enabled(stock_make_rows)
        register_availability_reader(available_units)
        register_in_stock_condition(in_stock_condition)
