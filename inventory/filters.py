import django_filters

from inventory.models import InventoryMovement


class MovementFilter(django_filters.FilterSet):
    product = django_filters.NumberFilter(field_name="product_id")
    kind = django_filters.ChoiceFilter(choices=InventoryMovement.Kind.choices)
    reference = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = InventoryMovement
        fields = ["product", "kind", "reference", "since", "until"]
