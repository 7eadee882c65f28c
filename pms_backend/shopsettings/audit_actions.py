"""The settings' audit actions as staff read them in the audit log."""

from audit.action_names import register_action_names

register_action_names({"setting.updated": "Setting changed"})
