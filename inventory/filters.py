import django_filters

from inventory.models import InventoryMovement, Transfer
from pms_backend.api.filters import IdFilter, UtcIsoDateTimeFilter


class MovementFilter(django_filters.FilterSet):
    product = IdFilter(field_name="product_id")
    kind = django_filters.ChoiceFilter(choices=InventoryMovement.Kind.choices)
    reference = django_filters.CharFilter()
    # By code; one that names no location is an empty page, as an unknown id is.
    location = django_filters.CharFilter(field_name="location__code")
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = InventoryMovement
        fields = ["product", "kind", "reference", "location", "since", "until"]


class TransferFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Transfer.Status.choices)
    from_location = django_filters.CharFilter(field_name="from_location__code")
    to_location = django_filters.CharFilter(field_name="to_location__code")

    class Meta:
        model = Transfer
        fields = ["status", "from_location", "to_location"]
