"""The orders' audit actions as staff read them in the audit log."""

from audit.action_names import register_action_names

register_action_names(
    {
        "order.created": "Order placed",
        "order.process": "Order processed",
        "order.complete": "Order completed",
        "order.cancel": "Order cancelled",
        "order.refund": "Order refunded",
    }
)
