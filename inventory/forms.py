from django import forms

from catalog.models import Product
from inventory.models import Location
from inventory.services import MANUAL_KINDS, MAX_MOVEMENT_QUANTITY


class VariantChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.sku} ({' / '.join(obj.option_values.values())})"


class StockMovementForm(forms.Form):
    """Receive or adjust stock from the admin: every change is a ledger line with a reason,
    at one location."""

    variant = VariantChoiceField(
        queryset=Product.objects.none(),
        empty_label="Choose the variant",
        help_text="Which of the product's variants (its stock is theirs).",
    )
    location = forms.ModelChoiceField(
        queryset=Location.objects.none(),
        required=False,  # not sent: the default location, as the service takes it
        empty_label=None,
        help_text="Where the goods are received or counted; only active locations.",
    )
    kind = forms.ChoiceField(
        choices=[(str(k), k.label) for k in MANUAL_KINDS],
        help_text="Receipt/return add stock; adjustment/correction take a signed quantity.",
    )
    quantity = forms.IntegerField(min_value=-MAX_MOVEMENT_QUANTITY, max_value=MAX_MOVEMENT_QUANTITY)
    reason = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60})
    )

    def __init__(self, *args, variants=None, **kwargs):
        """``variants``: the product's variants to choose from (none: no choice)."""
        super().__init__(*args, **kwargs)
        if variants is None:
            del self.fields["variant"]
        else:
            variant = self.fields["variant"]
            assert isinstance(variant, forms.ModelChoiceField)
            variant.queryset = variants
        field = self.fields["location"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Location.objects.filter(is_active=True).order_by("priority", "id")
        if not self.is_bound:
            # The location a movement naming none goes to (``default_location``), ticked
            # already; read, not made: a shop without locations gets its first on receipt.
            first = field.queryset.first()
            field.initial = first.pk if first else None
