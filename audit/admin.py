import json

from django.apps import apps
from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import capfirst

from audit.action_names import action_choices, action_in_words
from audit.models import AuditLog
from pms_backend.admin_display import actor_in_words, cut_to_fit, short_moment
from pms_backend.admin_mixins import ReadOnlyAdminMixin


def object_type_in_words(object_type: str) -> str:
    """Return a stored object type (``catalog.product``) as staff say it: "Product"."""
    try:
        model = apps.get_model(object_type)
    except (LookupError, ValueError):
        return object_type
    return str(capfirst(model._meta.verbose_name))


class _WordedValuesFilter(admin.SimpleListFilter):
    """A filter by the stored code (the address keeps ``?action=order.cancel``, as the API
    and the history links write it), its choices in words."""

    parameter_name: str  # the column filtered, by its own name

    def _codes(self) -> list[str]:
        return list(
            AuditLog.objects.order_by().values_list(self.parameter_name, flat=True).distinct()
        )

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value else queryset


class ActionFilter(_WordedValuesFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return action_choices(self._codes())


class ObjectTypeFilter(_WordedValuesFilter):
    title = "object type"
    parameter_name = "object_type"

    def lookups(self, request, model_admin):
        codes = [code for code in self._codes() if code]
        return sorted(((c, object_type_in_words(c)) for c in codes), key=lambda c: c[1])


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit log: readable and filterable, never added to, changed or deleted."""

    # At 1,366 px: when, who, what, on what. The object's ID, the request and the changes
    # are on the entry's page.
    list_display = ["when", "actor", "action_name", "object_shown"]
    list_display_links = ["when"]
    list_filter = [ActionFilter, "actor_type", ObjectTypeFilter, "created_at"]
    search_fields = ["actor_label", "actor_id", "object_id", "object_repr", "request_id", "action"]
    search_help_text = "Actor, object ID or name, request ID, or an action's code."
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = [
        "created_at",
        "actor_type",
        "actor_id_shown",
        "actor",
        "action_name",
        "object_type_shown",
        "object_id",
        "object_repr",
        "changes_pretty",
        "request_id_shown",
        "ip_address",
    ]
    # Shown worded (below).
    exclude = ["changes", "actor_id", "actor_label", "request_id", "ip", "action", "object_type"]

    @admin.display(description="When", ordering="created_at")
    def when(self, obj: AuditLog) -> str:
        return short_moment(obj.created_at)

    @admin.display(description="Actor", ordering="actor_label")
    def actor(self, obj: AuditLog) -> str:
        return cut_to_fit(actor_in_words(obj.actor_label), 40)

    @admin.display(description="Action", ordering="action")
    def action_name(self, obj: AuditLog) -> str:
        # The code on hover: what the API's ?action= filter and the search take.
        return format_html('<span title="{}">{}</span>', obj.action, action_in_words(obj.action))

    @admin.display(description="Object")
    def object_shown(self, obj: AuditLog) -> str:
        kind = object_type_in_words(obj.object_type)
        return format_html("{} {}", kind, cut_to_fit(obj.object_repr or obj.object_id, 60))

    @admin.display(description="Object type")
    def object_type_shown(self, obj: AuditLog) -> str:
        return object_type_in_words(obj.object_type)

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
