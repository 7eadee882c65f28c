import django_filters
from django import forms

from catalog.models import Product

MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A whole-number id in the key range; "1.5" or 10**25 is refused, never read as 1 or a 500."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class ProductFilter(django_filters.FilterSet):
    category = IdFilter(field_name="category_id")
    status = django_filters.ChoiceFilter(choices=Product.Status.choices)

    class Meta:
        model = Product
        fields = ["category", "status"]
