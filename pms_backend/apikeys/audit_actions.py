"""The API keys' audit actions as staff read them in the audit log."""

from audit.action_names import register_action_names

register_action_names(
    {
        "api_key.created": "API key created",
        "api_key.revoked": "API key revoked",
    }
)
