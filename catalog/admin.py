"""Staff screens for the catalog. Every write goes through catalog.services."""

from __future__ import annotations

import itertools
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext
from django_fsm.admin import FSMAdminMixin

from audit.actors import Actor
from catalog import services, variants
from catalog.admin_csv import ProductCsvAdminMixin
from catalog.backorders import BACKORDER_FIELDS
from catalog.fields import PRODUCT_EDITABLE_FIELDS
from catalog.models import (
    PRICE_TEXT_MESSAGE,
    Category,
    Product,
    options_key,
    options_problem,
    price_text_is_valid,
)
from catalog.search import product_search
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


def options_as_text(options: list[dict]) -> str:
    """A product's options as staff write them: one line per option, "Size: S, M, L"."""
    return "\n".join(f"{o['name']}: {', '.join(o['values'])}" for o in options)


def options_from_text(text: str) -> list[dict]:
    """Read options written one per line ("Size: S, M, L"); raise ``ValidationError``
    saying what is wrong (the catalog's rule, ``options_problem``)."""
    options = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, colon, values = line.partition(":")
        if not colon:
            raise ValidationError(
                f"Line {number}: write an option as its name, a colon and its values "
                "separated by commas, such as “Size: S, M, L”."
            )
        options.append(
            {"name": name.strip(), "values": [v.strip() for v in values.split(",") if v.strip()]}
        )
    problem = options_problem(options)
    if problem:
        raise ValidationError(problem)
    return options


class OptionsField(forms.CharField):
    """The product's options as lines of text; cleans to the list the catalog keeps."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def prepare_value(self, value):
        return options_as_text(value) if isinstance(value, list) else value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        return options_from_text(super().to_python(value) or "")

    def has_changed(self, initial, data) -> bool:
        try:
            return self.to_python(data) != (initial or [])
        except ValidationError:
            return True


class ProductForm(forms.ModelForm):
    options = OptionsField(
        required=False,
        help_text="One option a line: its name, a colon, its values separated by commas, "
        "such as “Size: S, M, L” (at most 3 options). Save, then make the variants. A value "
        "a variant has cannot be removed (delete the variant first).",
    )

    class Meta:
        model = Product
        fields = [*PRODUCT_EDITABLE_FIELDS, "options", *BACKORDER_FIELDS]
        field_classes = {"price": PriceFormField}


class VariantForm(forms.ModelForm):
    """One variant's row on its product's page."""

    weight_grams = forms.IntegerField(
        label="Weight (g)", required=False, min_value=0, max_value=10**9
    )

    class Meta:
        model = Product
        fields = ["sku", "barcode", "price", "weight_grams", "track_stock", *BACKORDER_FIELDS]
        field_classes = {"price": PriceFormField}
        widgets = {
            "sku": forms.TextInput(attrs={"size": 22}),
            "barcode": forms.TextInput(attrs={"size": 14}),
            "price": forms.TextInput(attrs={"size": 9}),
            "backorder_limit": forms.NumberInput(attrs={"style": "width: 6em"}),
            "preorder_limit": forms.NumberInput(attrs={"style": "width: 6em"}),
        }


# What a variant's row may change (``variants.variant_update``'s names).
VARIANT_ROW_FIELDS = (
    "sku",
    "barcode",
    "price",
    "weight_grams",
    "track_stock",
    *BACKORDER_FIELDS,
)


class VariantInline(admin.TabularInline):
    """A product's variants, edited in place; saved through ``catalog.variants`` (see
    ``ProductAdmin.save_formset``). Made on the "Make variants" page, not added here."""

    model = Product
    fk_name = "parent"
    form = VariantForm
    fields = ["options_shown", *VARIANT_ROW_FIELDS]
    readonly_fields = ["options_shown"]
    extra = 0
    verbose_name = "variant"
    verbose_name_plural = "variants"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("pk")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # Django refuses on the row to delete what stock, the ledger or orders refer to,
        # listing those rows; staff read it in the service's words instead.
        protected = formset.form.hand_clean_DELETE

        def hand_clean_DELETE(form) -> None:
            try:
                protected(form)
            except ValidationError:
                raise ValidationError(
                    f"Variant {form.instance.sku} has stock, ledger lines or orders, which "
                    "keep it; archive the product instead."
                ) from None

        formset.form.hand_clean_DELETE = hand_clean_DELETE
        return formset

    @admin.display(description="Options")
    def options_shown(self, obj: Product) -> str:
        return " / ".join(obj.option_values.values())

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a variant is a change of its product (refused once it is stocked or sold).
        return request.user.has_perm("catalog.change_product")


class ProductChangeList(ChangeList):
    """The product list: products, never their variants (read on their product's page)."""

    def get_queryset(self, request, exclude_parameters=None):
        self.root_queryset = self.root_queryset.filter(parent__isnull=True)
        return super().get_queryset(request, exclude_parameters)


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
    readonly_fields = ["status", "variants_made", "published_at", "created_at", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["publish_selected", "unpublish_selected", "archive_selected", "restore_selected"]
    show_full_result_count = False

    def get_changelist(self, request, **kwargs):
        return ProductChangeList

    def get_search_results(self, request, queryset, search_term):
        """The product list searches as the API does (catalog.search): ranked words,
        SKUs, barcodes, typos. Other searches of products (the autocomplete of a transfer's
        lines, which offers variants) keep the admin's substring match."""
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name != "catalog_product_changelist":
            return super().get_search_results(request, queryset, search_term)
        if not search_term.strip():
            return queryset, False
        found = product_search(queryset, search_term)
        # Best first, unless staff sort by a column (the list orders before it searches).
        if request.GET.get(ORDER_VAR):
            found = found.order_by(*queryset.query.order_by)
        return found, False

    def get_queryset(self, request):
        made = (
            Product.objects.filter(parent=OuterRef("pk"))
            .order_by()
            .values("parent")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(variants_n=Coalesce(Subquery(made), 0))

    def get_inlines(self, request, obj):
        # A product's variants (a variant has none of its own, and a new product none yet).
        if obj is None or obj.parent_id is not None:
            return []
        if not (obj.options or getattr(obj, "variants_n", 0)):
            return []
        return [VariantInline]

    def get_fields(self, request, obj=None):
        # The variants' count and "Make variants" right under the options they come from.
        fields = [name for name in super().get_fields(request, obj) if name != "variants_made"]
        if obj is not None:
            fields.insert(fields.index("options") + 1, "variants_made")
        if obj is not None and (obj.options or getattr(obj, "variants_n", 0)):
            # Sold through its variants: each variant's row has its own backorder settings.
            fields = [name for name in fields if name not in BACKORDER_FIELDS]
        return fields

    @admin.display(description="Variants")
    def variants_made(self, obj: Product) -> str:
        if obj.pk is None:
            return ""
        made = getattr(obj, "variants_n", None)
        if made is None:
            made = obj.variants.count()
        said = f"{made:,} variant{'s' if made != 1 else ''}" if made else "No variants yet"
        if not obj.options:
            return f"{said}: declare the options above and save, then make them."
        return format_html(
            '{} &nbsp; <a class="button" id="make-variants" href="{}">Make variants</a>',
            said,
            reverse("admin:catalog_product_make_variants", args=[obj.pk]),
        )

    @admin.display(description="SKU", ordering="sku")
    def sku_code(self, obj: Product) -> str:
        # Its variants counted under it: a column of their own would not fit 1,366 px.
        made = getattr(obj, "variants_n", 0)
        if not made:
            return obj.sku
        return format_html(
            '{}<br><span class="variant-count quiet">{} variant{}</span>',
            obj.sku,
            f"{made:,}",
            "" if made == 1 else "s",
        )

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
        fields = {name: value for name, value in form.cleaned_data.items() if name != "options"}
        if change:
            data = {name: fields[name] for name in form.changed_data if name in fields}
            services.product_update(actor=actor, product_id=obj.pk, data=data)
        else:
            created = services.product_create(actor=actor, **fields)
            obj.pk = created.pk
        if "options" in form.changed_data:
            # A refusal (a value a variant has) rolls the whole save back and shows as an
            # error message (ServiceRefusalAdminMixin).
            variants.product_set_options(
                actor=actor, product_id=obj.pk, options=form.cleaned_data["options"]
            )

    def save_formset(self, request, form, formset, change):
        """Save the variants' rows through ``catalog.variants``: changes, then deletions.
        A refusal rolls the whole save back and shows as an error message."""
        if formset.model is not Product:
            return super().save_formset(request, form, formset, change)
        actor = Actor.from_request(request)
        deleted = {row.instance.pk for row in formset.deleted_forms}
        for row in formset.initial_forms:
            if row.instance.pk in deleted:
                continue
            data = {name: row.cleaned_data[name] for name in row.changed_data}
            if data:
                variants.variant_update(actor=actor, variant_id=row.instance.pk, data=data)
        for pk in sorted(deleted):
            variants.variant_delete(actor=actor, variant_id=pk)
        return None

    def construct_change_message(self, request, form, formsets, add=False):
        # The services' audit entries say what changed (the rows are not saved by the
        # formsets, which then know nothing of it).
        return super().construct_change_message(request, form, [], add)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A variant is read and edited on its product's page (the ledger links to it).
        parent = (
            Product.objects.filter(pk=object_id).values_list("parent_id", flat=True).first()
            if str(object_id).isascii() and str(object_id).isdigit()
            else None
        )
        if parent is not None:
            return HttpResponseRedirect(
                reverse("admin:catalog_product_change", args=[parent]) + "#variants-group"
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:product_id>/variants/make/",
                self.admin_site.admin_view(self.make_variants_view),
                name="catalog_product_make_variants",
            ),
            *super().get_urls(),
        ]

    def make_variants_view(self, request, product_id: int):
        """Every combination of the product's options, ticked to make (those made shown
        as such): "Make all" or "Make ticked" (``variants.variants_generate``)."""
        product = get_object_or_404(Product, pk=product_id, parent__isnull=True)
        if not self.has_change_permission(request, product):
            raise PermissionDenied
        back = reverse("admin:catalog_product_change", args=[product.pk])
        if request.method == "POST":
            made = self._make_variants(request, product)
            if made is not None:
                return HttpResponseRedirect(back)
        names = [o["name"] for o in product.options]
        have = dict(product.variants.values_list("options_key", "sku"))
        rows = []
        for values in itertools.islice(
            itertools.product(*(o["values"] for o in product.options)), variants.MAX_VARIANTS
        ):
            combination = dict(zip(names, values, strict=True))
            rows.append(
                {
                    "values": values,
                    "json": json.dumps(combination, ensure_ascii=False),
                    "sku": have.get(options_key(combination)),
                }
            )
        total = 1
        for option in product.options:
            total *= len(option["values"])
        return TemplateResponse(
            request,
            "admin/catalog/product/make_variants.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Make variants: {product}",
                "original": product,
                "names": names,
                "rows": rows,
                "total": total,
                "shown": len(rows),
                "to_make": sum(1 for r in rows if r["sku"] is None),
                "back_url": back,
            },
        )

    def _make_variants(self, request, product: Product) -> list[Product] | None:
        combinations = None
        if "_all" not in request.POST:
            try:
                combinations = [json.loads(c) for c in request.POST.getlist("combination")]
            except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
                combinations = []
            if not combinations:
                self.message_user(request, "Tick the combinations to make.", messages.ERROR)
                return None
        try:
            made = variants.variants_generate(
                actor=Actor.from_request(request),
                product_id=product.pk,
                combinations=combinations,
            )
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return None
        if made:
            skus = ", ".join(v.sku for v in made[:10]) + ("…" if len(made) > 10 else "")
            self.message_user(
                request,
                ngettext(
                    "Made %(count)d variant: %(skus)s.",
                    "Made %(count)d variants: %(skus)s.",
                    len(made),
                )
                % {"count": len(made), "skus": skus},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, "Those variants exist already.", messages.WARNING)
        return made

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
