import json

from django.contrib import admin
from django.utils.html import format_html

from pms_backend.admin_mixins import ReadOnlyAdminMixin
from pms_backend.events.models import Event


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The outbox, read-only: what was announced, and whether it has gone out."""

    list_display = ["event_id", "type", "subject", "created_at", "dispatched_at"]
    list_filter = ["type", "topic"]
    search_fields = ["event_id", "subject"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ["event_id", "type", "topic", "subject", "created_at", "dispatched_at", "payload"]
    readonly_fields = (
        "event_id",
        "type",
        "topic",
        "subject",
        "created_at",
        "dispatched_at",
        "payload",
    )

    @admin.display(description="Data")
    def payload(self, obj: Event) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, sort_keys=True))
