import django_filters

from inventory.models import InventoryMovement
from pms_backend.api.filters import IdFilter, UtcIsoDateTimeFilter


class MovementFilter(django_filters.FilterSet):
    product = IdFilter(field_name="product_id")
    kind = django_filters.ChoiceFilter(choices=InventoryMovement.Kind.choices)
    reference = django_filters.CharFilter()
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = InventoryMovement
        fields = ["product", "kind", "reference", "since", "until"]
