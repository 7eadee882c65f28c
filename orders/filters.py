import django_filters

from orders.models import Order
from pms_backend.api.filters import UtcIsoDateTimeFilter
from pms_backend.encryption.ciphers import blind_index


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    number = django_filters.CharFilter()
    customer_email = django_filters.CharFilter(
        method="filter_customer_email", help_text="Exact e-mail (matched by its blind index)."
    )

    class Meta:
        model = Order
        fields = ["status", "since", "until", "number", "customer_email"]

    def filter_customer_email(self, queryset, name, value):
        return queryset.filter(customer_email_index=blind_index(value))
