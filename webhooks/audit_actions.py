"""The webhooks' audit actions as staff read them in the audit log."""

from audit.action_names import register_action_names

register_action_names(
    {
        "webhook_endpoint.created": "Webhook endpoint created",
        "webhook_endpoint.updated": "Webhook endpoint changed",
        "webhook_endpoint.deleted": "Webhook endpoint deleted",
        "webhook_endpoint.secret_rotated": "Webhook signing secret rotated",
        "webhook_endpoint.disabled": "Webhook endpoint disabled",
        "webhook_delivery.redelivered": "Webhook delivery sent again",
    }
)
