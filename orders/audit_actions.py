"""The orders' audit actions as staff read them in the audit log."""

from audit.action_names import register_action_names

register_action_names(
    {
        "order.created": "Order placed",
        "order.process": "Order processed",
        "order.complete": "Order completed",
        "order.cancel": "Order cancelled",
        "order.refund": "Order refunded",
        "order.backorder_allocated": "Backordered units allocated",
        "fulfillment.create": "Order shipped (fulfilment)",
        "fulfillment.update": "Fulfilment tracking changed",
        "refund.created": "Refund paid",
        "return.requested": "Return requested",
        "return.received": "Return received",
        "return.refunded": "Return refunded",
        "return.cancelled": "Return cancelled",
    }
)
