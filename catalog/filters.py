import django_filters

from catalog.models import Category, Product
from pms_backend.api.filters import IdFilter, StrictBooleanFilter


class ProductFilter(django_filters.FilterSet):
    category = IdFilter(field_name="category_id")
    status = django_filters.ChoiceFilter(choices=Product.Status.choices)

    class Meta:
        model = Product
        fields = ["category", "status"]


class CategoryFilter(django_filters.FilterSet):
    # An id, not a choice: an unknown parent has no children (an empty page), not a 400.
    parent = IdFilter(field_name="parent_id")
    is_active = StrictBooleanFilter()

    class Meta:
        model = Category
        fields = ["parent", "is_active"]
