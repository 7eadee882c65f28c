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
        "inventory.view_stocklevel",
        "inventory.view_location",
    ],
    # Receive, adjust and transfer stock, run the locations, ship orders; see products and
    # orders; never change prices.
    "Warehouse staff": [
        "catalog.view_product",
        "catalog.view_category",
        "inventory.add_inventorymovement",
        "inventory.view_inventorymovement",
        "inventory.view_stocklevel",
        "inventory.add_location",
        "inventory.change_location",
        "inventory.view_location",
        "inventory.add_transfer",
        "inventory.change_transfer",
        "inventory.view_transfer",
        "orders.view_order",
        # Ship orders: the goods leave the warehouse.
        "orders.add_fulfillment",
        "orders.change_fulfillment",
        "orders.view_fulfillment",
        # Returned goods arrive at the warehouse: receiving them is its work.
        "orders.view_return",
        "orders.change_return",
    ],
    # Move orders through their states, ship and refund them, run their returns; see
    # products and stock.
    "Order managers": [
        "orders.view_order",
        "orders.change_order",
        "orders.add_fulfillment",
        "orders.change_fulfillment",
        "orders.view_fulfillment",
        "orders.add_refund",
        "orders.view_refund",
        "orders.add_return",
        "orders.change_return",
        "orders.view_return",
        "catalog.view_product",
        "inventory.view_inventorymovement",
        "inventory.view_stocklevel",
        "inventory.view_location",
    ],
    # Read the audit log and nothing else.
    "Auditors": ["audit.view_auditlog"],
}
