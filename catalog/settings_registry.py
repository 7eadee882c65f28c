"""Products as a settings scope: a setting may have a value of its own per product,
which beats the shop-wide value (``ProductSetting``)."""

from catalog.models import ProductSetting
from pms_backend.shopsettings.registry import Scope, register_scope

register_scope(
    Scope(
        name="product",
        value_model=ProductSetting,
        label=lambda product: product.sku,
    )
)
