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
        "stock.transfer_out": "Stock sent on a transfer",
        "stock.transfer_in": "Stock received from a transfer",
        "transfer.created": "Transfer drafted",
        "transfer.updated": "Transfer changed",
        "transfer.dispatched": "Transfer dispatched",
        "transfer.received": "Transfer received",
        "transfer.cancelled": "Transfer cancelled",
        "location.created": "Stock location created",
        "location.updated": "Stock location changed",
        "location.deleted": "Stock location deleted",
    }
)
