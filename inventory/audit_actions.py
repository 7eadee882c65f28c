"""Inventory's audit actions (one per kind of stock movement) as staff read them."""

from audit.action_names import register_action_names

register_action_names(
    {
        "stock.receipt": "Stock received",
        "stock.adjustment": "Stock adjusted",
        "stock.reserve": "Stock reserved",
        "stock.release": "Stock released",
        "stock.sale": "Stock sold",
        "stock.return": "Stock returned",
        "stock.correction": "Stock corrected",
    }
)
