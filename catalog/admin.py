"""Staff screens for the catalog. Every write goes through catalog.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import ngettext
from django_fsm.admin import FSMAdminMixin

from audit.actors import Actor
from catalog import services
from catalog.admin_csv import ProductCsvAdminMixin
from catalog.fields import PRODUCT_EDITABLE_FIELDS
from catalog.models import PRICE_TEXT_MESSAGE, Category, Product, price_text_is_valid
from pms_backend.admin_display import cut_to_fit, money
from pms_backend.admin_mixins import AuditHistoryAdminMixin, ServiceRefusalAdminMixin
from pms_backend.errors import DomainError

# What staff read after a product's move: "LAMP-1 published."
MOVED = {
    "publish": "published",
    "unpublish": "moved back to draft",
    "archive": "archived",
    "restore": "restored to draft",
}
# ... and after a bulk move, singular and plural.
BULK_MOVED = {
    "publish": ("Published %(count)d product.", "Published %(count)d products."),
    "unpublish": (
        "Moved %(count)d product back to draft.",
        "Moved %(count)d products back to draft.",
    ),
    "archive": ("Archived %(count)d product.", "Archived %(count)d products."),
    "restore": ("Restored %(count)d product to draft.", "Restored %(count)d products to draft."),
}


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name", "slug", "parent", "position", "is_active"]

    def clean(self):
        cleaned = super().clean()
        parent = cleaned.get("parent")
        if self.instance.pk and parent is not None:
            try:
                services.category_check_parent(self.instance, parent)
            except DomainError as exc:
                raise ValidationError({"parent": exc.detail}) from exc
        return cleaned


@admin.register(Category)
class CategoryAdmin(ServiceRefusalAdminMixin, AuditHistoryAdminMixin, admin.ModelAdmin):
    form = CategoryForm
    list_display = ["tree_name", "slug", "is_active", "position"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    list_select_related = ["parent__parent__parent__parent"]
    ordering = ["parent__id", "position", "name"]

    @admin.display(description="Category (full path)", ordering="name")
    def tree_name(self, obj: Category) -> str:
        names, node, depth = [], obj, 0
        while node is not None and depth < 20:
            names.append(node.name)
            node, depth = node.parent, depth + 1
        return " / ".join(reversed(names))

    def save_model(self, request, obj, form, change):
        actor = Actor.from_request(request)
        data = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            services.category_update(actor=actor, category_id=obj.pk, data=data)
        else:
            created = services.category_create(actor=actor, **form.cleaned_data)
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.category_delete(actor=Actor.from_request(request), category_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for category in queryset:
            try:
                services.category_delete(actor=Actor.from_request(request), category_id=category.pk)
            except DomainError as exc:
                self.message_user(request, exc.detail, messages.ERROR)


class PriceFormField(forms.DecimalField):
    """The price box: digits 0-9 only and no sign ("-0.00" and "١٢.00" are refused)."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and not price_text_is_valid(value):
            raise forms.ValidationError(PRICE_TEXT_MESSAGE, code="invalid")
        return super().to_python(value)


class ProductForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = list(PRODUCT_EDITABLE_FIELDS)
        field_classes = {"price": PriceFormField}


@admin.register(Product)
class ProductAdmin(
    ProductCsvAdminMixin,
    ServiceRefusalAdminMixin,
    AuditHistoryAdminMixin,
    FSMAdminMixin,
    admin.ModelAdmin,
):
    form = ProductForm
    fsm_fields = ["status"]
    # At 1,366 px, with the stock columns inventory adds: a name takes at most two lines.
    list_display = [
        "sku_code",
        "product_name",
        "status_badge",
        "price_display",
        "category_name",
    ]
    list_filter = ["status", "category"]
    search_fields = ["sku", "name"]
    list_select_related = ["category"]
    readonly_fields = ["status", "published_at", "created_at", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["publish_selected", "unpublish_selected", "archive_selected", "restore_selected"]
    show_full_result_count = False

    @admin.display(description="SKU", ordering="sku")
    def sku_code(self, obj: Product) -> str:
        return obj.sku

    @admin.display(description="Name", ordering="name")
    def product_name(self, obj: Product) -> str:
        return cut_to_fit(obj.name, 56)

    @admin.display(description="Category", ordering="category__name")
    def category_name(self, obj: Product) -> str:
        return cut_to_fit(obj.category.name, 28) if obj.category_id else ""

    @admin.display(description="Price", ordering="price")
    def price_display(self, obj: Product) -> str:
        return money(obj.price, obj.currency)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Product) -> str:
        colours = {"draft": "#6c757d", "published": "#198754", "archived": "#964b00"}
        return format_html(
            '<span style="color:{};font-weight:bold">{}</span>',
            colours.get(obj.status, "#000"),
            obj.get_status_display(),
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        # Products are archived, never deleted: orders and the ledger refer to them.
        return False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if not self.has_change_permission(request, obj):
            # The buttons post the change form, which a view-only user may not post.
            context[self.fsm_context_key] = []
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        actor = Actor.from_request(request)
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data}
            services.product_update(actor=actor, product_id=obj.pk, data=data)
        else:
            created = services.product_create(actor=actor, **form.cleaned_data)
            obj.pk = created.pk

    def response_change(self, request, obj):
        name = request.POST.get(self.fsm_post_param)
        if not name:
            return super().response_change(request, obj)
        try:
            services.product_transition(
                actor=Actor.from_request(request), product_id=obj.pk, transition=name
            )
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
        else:
            self.message_user(request, f"{obj.sku} {MOVED.get(name, name)}.", messages.SUCCESS)
        return HttpResponseRedirect(request.path)

    def _bulk(self, request, queryset, transition: str) -> None:
        outcome = services.product_bulk_transition(
            actor=Actor.from_request(request),
            product_ids=list(queryset.values_list("pk", flat=True)),
            transition=transition,
        )
        if outcome.moved:
            count = len(outcome.moved)
            self.message_user(
                request,
                ngettext(*BULK_MOVED[transition], count) % {"count": count},
                messages.SUCCESS,
            )
        for product, reason in outcome.refused:
            self.message_user(request, f"{product.sku}: {reason}", messages.WARNING)

    @admin.action(description="Publish selected products", permissions=["change"])
    def publish_selected(self, request, queryset):
        self._bulk(request, queryset, "publish")

    @admin.action(description="Unpublish selected products (back to draft)", permissions=["change"])
    def unpublish_selected(self, request, queryset):
        self._bulk(request, queryset, "unpublish")

    @admin.action(description="Archive selected products", permissions=["change"])
    def archive_selected(self, request, queryset):
        # Archiving takes products off sale: asked first, like Django's delete_selected.
        if request.POST.get("post") != "yes":
            return self._confirm_archive(request, queryset)
        self._bulk(request, queryset, "archive")
        return None  # back to the list (a redirect): a reload sends nothing again

    def _confirm_archive(self, request, queryset):
        products = list(queryset.order_by("sku"))
        return TemplateResponse(
            request,
            "admin/catalog/product/archive_selected_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Archive the selected products?",
                "products": products,
                "published": sum(p.status == Product.Status.PUBLISHED for p in products),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "media": self.media,
            },
        )

    @admin.action(description="Restore selected products to draft", permissions=["change"])
    def restore_selected(self, request, queryset):
        self._bulk(request, queryset, "restore")
