from django.contrib import admin

from inventory.models import InventoryMovement
from pms_backend.admin_mixins import ReadOnlyAdminMixin


@admin.register(InventoryMovement)
class InventoryMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The stock ledger, read-only: each line explains one change of a stock row."""

    list_display = [
        "created_at",
        "product",
        "kind",
        "on_hand_delta",
        "reserved_delta",
        "on_hand_after",
        "reserved_after",
        "reference",
        "actor_label",
        "reason",
    ]
    list_filter = ["kind", "created_at"]
    search_fields = ["product__sku", "product__name", "reference", "reason"]
    list_select_related = ["product"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
