"""The four ready-made staff groups and the Django permissions each one holds."""

ROLES: dict[str, list[str]] = {
    # Run the catalog: products, categories, prices; see stock.
    "Catalog managers": [
        "catalog.add_product",
        "catalog.change_product",
        "catalog.view_product",
        "catalog.add_category",
        "catalog.change_category",
        "catalog.delete_category",
        "catalog.view_category",
        "inventory.view_inventorymovement",
    ],
    # Receive and adjust stock; see products and orders; never change prices.
    "Warehouse staff": [
        "catalog.view_product",
        "catalog.view_category",
        "inventory.add_inventorymovement",
        "inventory.view_inventorymovement",
        "orders.view_order",
    ],
    # Move orders through their states, refund them; see products and stock.
    "Order managers": [
        "orders.view_order",
        "orders.change_order",
        "catalog.view_product",
        "inventory.view_inventorymovement",
    ],
    # Read the audit log and nothing else.
    "Auditors": ["audit.view_auditlog"],
}
