import json

from django.contrib import admin
from django.utils.html import format_html

from audit.models import AuditLog
from pms_backend.admin_display import actor_in_words
from pms_backend.admin_mixins import ReadOnlyAdminMixin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit log: readable and filterable, never added to, changed or deleted."""

    list_display = [
        "created_at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "object_repr",
    ]
    list_filter = ["action", "actor_type", "object_type", "created_at"]
    search_fields = ["actor_label", "actor_id", "object_id", "object_repr", "request_id", "action"]
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = [
        "created_at",
        "actor_type",
        "actor_id_shown",
        "actor",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes_pretty",
        "request_id_shown",
        "ip_address",
    ]
    exclude = ["changes", "actor_id", "actor_label", "request_id", "ip"]  # shown worded (below)

    @admin.display(description="Actor", ordering="actor_label")
    def actor(self, obj: AuditLog) -> str:
        return actor_in_words(obj.actor_label)

    @admin.display(description="Actor ID")
    def actor_id_shown(self, obj: AuditLog) -> str:
        return obj.actor_id

    @admin.display(description="Request ID")
    def request_id_shown(self, obj: AuditLog) -> str:
        return obj.request_id

    @admin.display(description="IP address")
    def ip_address(self, obj: AuditLog) -> str | None:
        return obj.ip

    @admin.display(description="Changes")
    def changes_pretty(self, obj: AuditLog) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.changes, indent=2, sort_keys=True))
