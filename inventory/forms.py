from django import forms

from inventory.services import MANUAL_KINDS, MAX_MOVEMENT_QUANTITY


class StockMovementForm(forms.Form):
    """Receive or adjust stock from the admin: every change is a ledger line with a reason."""

    kind = forms.ChoiceField(
        choices=[(str(k), k.label) for k in MANUAL_KINDS],
        help_text="Receipt/return add stock; adjustment/correction take a signed quantity.",
    )
    quantity = forms.IntegerField(min_value=-MAX_MOVEMENT_QUANTITY, max_value=MAX_MOVEMENT_QUANTITY)
    reason = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60})
    )
