import django_filters
from django import forms
from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema_field

from catalog import search
from catalog.models import Category, Product
from pms_backend.api.filters import IdFilter, StrictBooleanFilter, StrictOrderingFilter

MAX_OPTION_FILTERS = 10
OPTION_FORMAT = 'Write an option value as "Name:Value", such as "Size:M".'
# "Name:Value" as the schema states it (what the filter accepts).
MAX_OPTION_LENGTH = 201
OPTION_VALUE_SCHEMA = {"type": "string", "pattern": "^[^:]+:.+$", "maxLength": MAX_OPTION_LENGTH}


class OptionValuesField(forms.Field):
    """``option=Size:M&option=Colour:Red``: every ``option`` given, as (name, value)."""

    widget = forms.MultipleHiddenInput  # reads every value of the parameter

    def to_python(self, value):
        items = [item for item in (value or []) if item != ""]
        if len(items) > MAX_OPTION_FILTERS:
            raise ValidationError(f"At most {MAX_OPTION_FILTERS} option values.")
        pairs = []
        for item in items:
            name, colon, wanted = item.partition(":")
            if not colon or not name or not wanted or "\x00" in item:
                raise ValidationError(OPTION_FORMAT)
            if len(item) > MAX_OPTION_LENGTH:
                raise ValidationError("An option filter is at most 201 characters.")
            # Blank around the colon is trimmed; a name or value left blank matches nothing.
            pairs.append((name.strip(), wanted.strip()))
        return pairs


@extend_schema_field({"type": "array", "items": OPTION_VALUE_SCHEMA})
class OptionValuesFilter(django_filters.Filter):
    field_class = OptionValuesField


PRICE = {"min_value": 0, "max_digits": 12, "decimal_places": 2}


class ProductFilter(django_filters.FilterSet):
    category = IdFilter(field_name="category_id")
    status = django_filters.ChoiceFilter(choices=Product.Status.choices)
    search = django_filters.CharFilter(
        method="filter_search", max_length=search.MAX_SEARCH_LENGTH, strip=True
    )
    option = OptionValuesFilter(method="filter_option")
    price_min = django_filters.NumberFilter(method="filter_price", **PRICE)
    price_max = django_filters.NumberFilter(method="filter_price", **PRICE)
    in_stock = StrictBooleanFilter(method="filter_in_stock")

    class Meta:
        model = Product
        fields = ["category", "status"]

    def filter_search(self, queryset, name, value):
        return search.product_search(queryset, value) if value else queryset

    def filter_option(self, queryset, name, value):
        return search.with_option_values(queryset, value) if value else queryset

    def filter_price(self, queryset, name, value):
        # Both bounds in one filter (a product selling something in the range), once.
        if name == "price_max" and self.form.cleaned_data.get("price_min") is not None:
            return queryset
        return search.priced_between(
            queryset,
            self.form.cleaned_data.get("price_min"),
            self.form.cleaned_data.get("price_max"),
        )

    def filter_in_stock(self, queryset, name, value):
        return queryset if value is None else search.in_stock(queryset, value)


class SearchOrderingFilter(StrictOrderingFilter):
    """``ordering`` as given; without it, a search keeps its rank order (best first)."""

    def get_ordering(self, request, queryset, view):
        explicit = request.query_params.get(self.ordering_param)
        if not explicit and search.search_words(request.query_params.get("search", "")):
            return None
        return super().get_ordering(request, queryset, view)


class CategoryFilter(django_filters.FilterSet):
    # An id, not a choice: an unknown parent has no children (an empty page), not a 400.
    parent = IdFilter(field_name="parent_id")
    is_active = StrictBooleanFilter()

    class Meta:
        model = Category
        fields = ["parent", "is_active"]
