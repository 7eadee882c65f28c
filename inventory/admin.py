"""Staff screens for stock: the ledger, and each product's stock on the product screens."""

from django.contrib import admin, messages
from django.contrib.admin.helpers import AdminForm
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audit.actors import Actor
from catalog.admin import ProductAdmin as CatalogProductAdmin
from catalog.models import Product
from inventory.forms import StockMovementForm
from inventory.models import InventoryMovement, Stock
from inventory.selectors import stock_for
from inventory.services import stock_record_movement
from pms_backend.admin_display import actor_in_words, cut_to_fit, short_moment
from pms_backend.admin_mixins import ReadOnlyAdminMixin
from pms_backend.errors import DomainError


def _stock_of(product: Product) -> Stock:
    try:
        return product.stock
    except Stock.DoesNotExist:
        return Stock(product_id=product.pk)


@admin.register(InventoryMovement)
class InventoryMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The stock ledger, read-only: each line explains one change of a stock row."""

    # At 1,366 px: when, which product (its SKU; the name on hover), what moved and the
    # balances after it, by whom and why (with the order it was for).
    list_display = ["when", "product_shown", "change", "after", "actor", "why"]
    list_display_links = ["when"]
    list_filter = ["kind", "created_at"]
    search_fields = ["product__sku", "product__name", "reference", "reason"]
    list_select_related = ["product"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return ["actor" if f.name == "actor_label" else f.name for f in self.model._meta.fields]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="When", ordering="created_at")
    def when(self, movement: InventoryMovement) -> str:
        return short_moment(movement.created_at)

    @admin.display(description="Product", ordering="product__sku")
    def product_shown(self, movement: InventoryMovement) -> str:
        product = movement.product
        return format_html('<span title="{}">{}</span>', product.name, product.sku)

    @admin.display(description="Movement", ordering="kind")
    def change(self, movement: InventoryMovement) -> str:
        parts = [
            f"{delta:+,} {what}"
            for delta, what in (
                (movement.on_hand_delta, "on hand"),
                (movement.reserved_delta, "reserved"),
            )
            if delta
        ]
        return f"{movement.get_kind_display()}: {', '.join(parts) or 'no change'}"

    @admin.display(description="After")
    def after(self, movement: InventoryMovement) -> str:
        return f"{movement.on_hand_after:,} on hand, {movement.reserved_after:,} reserved"

    @admin.display(description="Reason", ordering="reason")
    def why(self, movement: InventoryMovement) -> str:
        reason = cut_to_fit(movement.reason, 40)
        if not movement.reference:
            return reason
        # "order:PMS-…" as staff say it: "order PMS-…".
        return format_html("{} ({})", reason, movement.reference.replace(":", " ", 1))

    @admin.display(description="By", ordering="actor_label")
    def actor(self, movement: InventoryMovement) -> str:
        return cut_to_fit(actor_in_words(movement.actor_label), 28)


def _available_marked(product: Product, stock: Stock) -> str:
    """Return what can be sold, marked when low."""
    # Low means "reorder": only a product on sale can run low (drafts and archived ones
    # are not sold), measured against its own threshold.
    if product.status == Product.Status.PUBLISHED and stock.is_low:
        return format_html(
            '<strong class="low-stock" style="color:#ba2121">{} (low)</strong>',
            f"{stock.available:,}",
        )
    return f"{stock.available:,}"


# Django's way to extend another app's ModelAdmin: register a subclass in its place.
admin.site.unregister(Product)


@admin.register(Product)
class ProductAdmin(CatalogProductAdmin):
    """The catalog's product screens with each product's stock: columns in the list, a
    summary on its page and a page to receive or adjust it."""

    list_display = [
        *CatalogProductAdmin.list_display,
        # What can be sold; on hand and reserved on hover and on the product's page.
        "stock_available",
    ]
    list_select_related = [*CatalogProductAdmin.list_select_related, "stock"]
    # The stock summary right under the status.
    readonly_fields = [
        "status",
        "stock_summary",
        *(name for name in CatalogProductAdmin.readonly_fields if name != "status"),
    ]

    @admin.display(description="Available")
    def stock_available(self, obj: Product) -> str:
        stock = _stock_of(obj)
        return format_html(
            '<span title="{} on hand, {} reserved">{}</span>',
            f"{stock.on_hand:,}",
            f"{stock.reserved:,}",
            _available_marked(obj, stock),
        )

    @admin.display(description="Stock")
    def stock_summary(self, obj: Product) -> str:
        if obj.pk is None:
            return "Receive stock once the product is saved."
        stock = _stock_of(obj)
        return format_html(
            '{} on hand, {} reserved, {} available &nbsp; <a class="button" href="{}">'
            "Receive / adjust stock</a>",
            stock.on_hand,
            stock.reserved,
            _available_marked(obj, stock),  # marked as in the list when low
            reverse("admin:catalog_product_stock", args=[obj.pk]),
        )

    def get_urls(self):
        return [
            path(
                "<int:product_id>/stock/",
                self.admin_site.admin_view(self.stock_view),
                name="catalog_product_stock",
            ),
            *super().get_urls(),
        ]

    def stock_view(self, request, product_id: int):
        """Receive or adjust stock: the numbers change only through a recorded movement."""
        if not request.user.has_perm("inventory.add_inventorymovement"):
            raise PermissionDenied
        product = get_object_or_404(Product, pk=product_id)
        form = StockMovementForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                movement = stock_record_movement(
                    actor=Actor.from_request(request),
                    product_id=product.pk,
                    kind=form.cleaned_data["kind"],
                    quantity=form.cleaned_data["quantity"],
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                form.add_error(None, exc.detail)
            else:
                self.message_user(
                    request,
                    f"{product.sku}: {movement.kind} of {movement.on_hand_delta:+d} recorded; "
                    f"{movement.on_hand_after} on hand.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:catalog_product_change", args=[product.pk])
                )
        return TemplateResponse(
            request,
            "inventory/stock_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Receive / adjust stock: {product}",
                "original": product,
                "product": product,
                "stock": stock_for([product.pk])[product.pk],
                "form": form,
                # AdminForm renders any form; django-stubs ask for a ModelForm.
                "adminform": AdminForm(
                    form,  # type: ignore[arg-type]
                    [(None, {"fields": list(form.fields)})],
                    prepopulated_fields={},
                ),
                "back_url": reverse("admin:catalog_product_change", args=[product.pk]),
                "page_label": "Receive / adjust stock",
                "submit_label": "Record movement",
                "back_label": "Back to the product",
            },
        )
