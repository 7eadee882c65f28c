"""Sign-ins, refused credentials and staff accounts, as staff read them in the audit log."""

from audit.action_names import register_action_names

register_action_names(
    {
        "auth.login": "Signed in",
        "auth.logout": "Signed out",
        "auth.login_failed": "Sign-in failed",
        "auth.login_locked_out": "Sign-in locked out",
        # API keys presented to the API or a websocket (pms_backend.api, .websocket).
        "auth.failed": "API key refused",
        "auth.locked_out": "Address locked out (failed API keys)",
        "user.created": "Staff user created",
        "user.permissions_changed": "Staff user's permissions changed",
        "user.groups_changed": "Staff user's roles changed",
        "group.permissions_changed": "Role's permissions changed",
    }
)
