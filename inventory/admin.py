"""Staff screens for stock: the ledger, the levels per location (both read-only), each
product's stock, per location, on the product screens, and transfers between locations."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import AdminForm
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Subquery, Sum
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django_fsm.admin import FSMAdminMixin

from audit.actors import Actor
from catalog.admin import ProductAdmin as CatalogProductAdmin
from catalog.models import Product
from inventory import locations as location_services
from inventory import transfers
from inventory.forms import StockMovementForm
from inventory.models import (
    InventoryMovement,
    Location,
    Stock,
    StockLevel,
    Transfer,
    TransferLine,
)
from inventory.payloads import stock_representation
from inventory.selectors import product_levels_table, stock_for, variant_levels_table
from inventory.services import stock_record_movement
from pms_backend.admin_display import actor_in_words, breakable, cut_to_fit, short_moment
from pms_backend.admin_mixins import (
    AuditHistoryAdminMixin,
    ReadOnlyAdminMixin,
    ServiceRefusalAdminMixin,
)
from pms_backend.errors import DomainError


def _stock_of(product: Product) -> Stock:
    try:
        return product.stock
    except Stock.DoesNotExist:
        return Stock(product_id=product.pk)


@admin.register(InventoryMovement)
class InventoryMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The stock ledger, read-only: each line explains one change of a stock row."""

    # At 1,366 px: when, which product (its SKU; the name on hover), where (the location's
    # code; its name on hover), what moved and the balances there after it, by whom and
    # why (with the order it was for).
    list_display = ["when", "product_shown", "where", "change", "after", "actor", "why"]
    list_display_links = ["when"]
    list_filter = ["kind", "location", "created_at"]
    search_fields = ["product__sku", "product__name", "reference", "reason"]
    list_select_related = ["product", "location"]
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

    @admin.display(description="At", ordering="location__priority")
    def where(self, movement: InventoryMovement) -> str:
        return _location_shown(movement.location)

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


def level_on_hand(movement: InventoryMovement) -> int:
    """What the movement's location holds now (the movement's own figures are the
    product's totals)."""
    return (
        StockLevel.objects.filter(product_id=movement.product_id, location_id=movement.location_id)
        .values_list("on_hand", flat=True)
        .first()
        or 0
    )


def _location_shown(location) -> str:
    """Return a location as a narrow column shows it: its code (breaking after a hyphen
    or underscore), its name on hover."""
    return format_html('<span title="{}">{}</span>', location.name, breakable(location.code))


@admin.register(Location)
class LocationAdmin(ServiceRefusalAdminMixin, AuditHistoryAdminMixin, admin.ModelAdmin):
    """Warehouses and stores. Every change goes through ``inventory.locations``, which
    refuses to deactivate or delete a location holding stock (transfer it first)."""

    list_display = ["name", "code", "priority", "is_active", "units_on_hand"]
    list_filter = ["is_active"]
    search_fields = ["code", "name"]
    fields = ["code", "name", "address", "priority", "is_active"]
    ordering = ["priority", "id"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(units=Sum("stock_levels__on_hand"))

    @admin.display(description="Units on hand", ordering="units")
    def units_on_hand(self, obj: Location) -> str:
        return f"{getattr(obj, 'units', None) or 0:,}"

    def save_model(self, request, obj, form, change):
        actor = Actor.from_request(request)
        data = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            code = Location.objects.values_list("code", flat=True).get(pk=obj.pk)
            location_services.location_update(actor=actor, code=code, data=data)
        else:
            created = location_services.location_create(actor=actor, **form.cleaned_data)
            obj.pk = created.pk

    def delete_model(self, request, obj):
        location_services.location_delete(actor=Actor.from_request(request), code=obj.code)

    def delete_queryset(self, request, queryset):
        for location in queryset:
            try:
                location_services.location_delete(
                    actor=Actor.from_request(request), code=location.code
                )
            except DomainError as exc:
                self.message_user(request, exc.detail, messages.ERROR)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:inventory_location_changelist"))


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each product's stock at each location, read-only: levels change only through
    movements (receipts, orders, stocktakes) and transfers, each one a ledger line."""

    list_display = [
        "sku",
        "product_name",
        "where",
        "on_hand_shown",
        "reserved_shown",
        "available",
        "updated",
    ]
    list_display_links = ["sku"]
    list_filter = ["location"]
    search_fields = ["product__sku", "product__name"]
    search_help_text = "SKU or product name."
    list_select_related = ["product", "location"]
    ordering = ["product__sku", "location__priority", "location_id"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="SKU", ordering="product__sku")
    def sku(self, level: StockLevel) -> str:
        return breakable(level.product.sku)  # breaks after a hyphen, not mid-word

    @admin.display(description="Product", ordering="product__name")
    def product_name(self, level: StockLevel) -> str:
        return cut_to_fit(level.product.name, 40)  # two lines beside the location filter

    @admin.display(description="Location", ordering="location__priority")
    def where(self, level: StockLevel) -> str:
        return _location_shown(level.location)

    @admin.display(description="On hand", ordering="on_hand")
    def on_hand_shown(self, level: StockLevel) -> str:
        return f"{level.on_hand:,}"

    @admin.display(description="Reserved", ordering="reserved")
    def reserved_shown(self, level: StockLevel) -> str:
        return f"{level.reserved:,}"

    @admin.display(description="Available", ordering=F("on_hand") - F("reserved"))
    def available(self, level: StockLevel) -> str:
        return f"{level.available:,}"

    @admin.display(description="Updated", ordering="updated_at")
    def updated(self, level: StockLevel) -> str:
        return short_moment(level.updated_at)


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


def levels_table(levels: list[dict], stock: Stock | dict) -> str:
    """Return the product's levels per location as a table, its total in the last row."""
    total = stock if isinstance(stock, dict) else stock_representation(stock)
    rows = format_html_join(
        "",
        '<tr data-location="{}"><th scope="row"><span title="{}">{}</span>{}</th>'
        "<td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                level["code"],
                level["code"],
                level["name"],
                "" if level["is_active"] else " (inactive)",
                f"{level['on_hand']:,}",
                f"{level['reserved']:,}",
                f"{level['available']:,}",
            )
            for level in levels
        ),
    )
    return format_html(
        '<table class="stock-by-location" style="margin-top:.6em">'
        "<thead><tr><th>Location</th><th>On hand</th><th>Reserved</th><th>Available</th>"
        "</tr></thead><tbody>{}"
        '<tr class="stock-total"><th scope="row">Total</th><td>{}</td><td>{}</td><td>{}</td>'
        "</tr></tbody></table>",
        rows,
        f"{total['on_hand']:,}",
        f"{total['reserved']:,}",
        f"{total['available']:,}",
    )


def variants_table(table: dict) -> str:
    """Return the stock of a product's variants: a row per variant, its on hand at each
    location (reserved in brackets), its totals and a link to receive or adjust it."""
    locations = table["locations"]
    head = format_html_join(
        "",
        '<th scope="col" data-location="{}"><span title="{}">{}</span>{}</th>',
        (
            (loc["code"], loc["name"], loc["code"], "" if loc["is_active"] else " (inactive)")
            for loc in locations
        ),
    )

    def cells(row: dict) -> str:
        return format_html_join(
            "",
            '<td data-location="{}">{}{}</td>',
            (
                (
                    code,
                    f"{on_hand:,}",
                    f" ({reserved:,} reserved)" if reserved else "",
                )
                for code, (on_hand, reserved) in row["levels"].items()
            ),
        )

    rows = format_html_join(
        "",
        '<tr data-variant="{}"><th scope="row">{} <span class="quiet">{}</span></th>{}'
        '<td>{}</td><td>{}</td><td>{}</td><td><a href="{}">Receive / adjust</a></td></tr>',
        (
            (
                row["sku"],
                row["sku"],
                row["options"],
                cells(row),
                f"{row['on_hand']:,}",
                f"{row['reserved']:,}",
                f"{row['available']:,}",
                f"{reverse('admin:catalog_product_stock', args=[row['id']])}",
            )
            for row in table["variants"]
        ),
    )
    total = table["total"]
    return format_html(
        '<table class="stock-by-variant" style="margin-top:.6em"><thead><tr>'
        "<th>Variant</th>{}<th>On hand</th><th>Reserved</th><th>Available</th><th></th>"
        "</tr></thead><tbody>{}"
        '<tr class="stock-total"><th scope="row">Total</th>{}<td>{}</td><td>{}</td><td>{}</td>'
        "<td></td></tr></tbody></table>",
        head,
        rows,
        format_html_join("", "<td>{}</td>", (("",),) * len(locations)),
        f"{total['on_hand']:,}",
        f"{total['reserved']:,}",
        f"{total['available']:,}",
    )


def _has_variants(product: Product) -> bool:
    made = getattr(product, "variants_n", None)
    return bool(made) if made is not None else product.variants.exists()


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

    def get_queryset(self, request):
        # A product with variants holds no stock itself: the list shows its variants' sum.
        def summed(field: str):
            return Subquery(
                Stock.objects.filter(product__parent=OuterRef("pk"))
                .order_by()
                .values("product__parent")
                .annotate(total=Sum(field))
                .values("total")
            )

        return (
            super()
            .get_queryset(request)
            .annotate(variants_on_hand=summed("on_hand"), variants_reserved=summed("reserved"))
        )

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if getattr(request.resolver_match, "url_name", None) == "autocomplete":
            # Where stock is chosen (a transfer's lines): what holds stock, the variants and
            # the products without any, never a product with variants.
            found = found.filter(variants_n=0)
        return found, may_have_duplicates

    @admin.display(description="Available")
    def stock_available(self, obj: Product) -> str:
        if getattr(obj, "variants_n", 0):
            on_hand = getattr(obj, "variants_on_hand", None) or 0
            reserved = getattr(obj, "variants_reserved", None) or 0
            return format_html(
                '<span title="{} on hand, {} reserved over its variants">{}</span>',
                f"{on_hand:,}",
                f"{reserved:,}",
                f"{on_hand - reserved:,}",
            )
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
        if _has_variants(obj):
            table = variant_levels_table(obj.pk)
            total = table["total"]
            return format_html(
                "Over its variants: {} on hand, {} reserved, {} available &nbsp; "
                '<a class="button" href="{}">Receive / adjust stock</a>{}',
                f"{total['on_hand']:,}",
                f"{total['reserved']:,}",
                f"{total['available']:,}",
                reverse("admin:catalog_product_stock", args=[obj.pk]),
                variants_table(table),
            )
        stock = _stock_of(obj)
        return format_html(
            '{} on hand, {} reserved, {} available{} &nbsp; <a class="button" href="{}">'
            "Receive / adjust stock</a>{}",
            stock.on_hand,
            stock.reserved,
            _available_marked(obj, stock),  # marked as in the list when low
            # Units ordered beyond stock: what arrives goes to those orders first.
            f", {stock.backordered:,} backordered (waiting for stock)" if stock.backordered else "",
            reverse("admin:catalog_product_stock", args=[obj.pk]),
            levels_table(product_levels_table(obj.pk), stock),
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
        if product.parent_id is not None:
            # A variant's stock is moved from its product's page, the variant chosen.
            url = reverse("admin:catalog_product_stock", args=[product.parent_id])
            return HttpResponseRedirect(f"{url}?variant={product.pk}")
        variant_ids = list(product.variants.order_by("pk").values_list("pk", flat=True))
        if variant_ids:
            table = variant_levels_table(product.pk)
            stock, levels = table["total"], variants_table(table)
        else:
            stock = stock_for([product.pk])[product.pk]
            levels = levels_table(product_levels_table(product.pk), stock)
        form = StockMovementForm(
            request.POST or None,
            variants=product.variants.order_by("pk") if variant_ids else None,
            initial={"variant": request.GET.get("variant")},
        )
        if request.method == "POST" and form.is_valid():
            moved = form.cleaned_data.get("variant") or product
            try:
                movement = stock_record_movement(
                    actor=Actor.from_request(request),
                    product_id=moved.pk,
                    kind=form.cleaned_data["kind"],
                    quantity=form.cleaned_data["quantity"],
                    reason=form.cleaned_data["reason"],
                    location=form.cleaned_data["location"],
                )
            except DomainError as exc:
                form.add_error(None, exc.detail)
            else:
                self.message_user(
                    request,
                    f"{moved.sku}: {movement.kind} of {movement.on_hand_delta:+d} recorded "
                    f"at {movement.location.name}; {level_on_hand(movement)} on hand there.",
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
                "stock": stock,
                "levels": levels,
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


# --- transfers between locations --------------------------------------------------------


class TransferLineInline(admin.TabularInline):
    """A transfer's lines: edited while it is a draft, read-only once it left.

    A line is part of its transfer, not a thing of its own: who may draft a transfer
    (``add_transfer``) or change one (``change_transfer``) edits its lines, who may see
    one sees them. The roles hand out no ``*_transferline`` permissions, so Django's
    default (the line model's own) hid the lines from Warehouse staff."""

    model = TransferLine
    extra = 1
    fields = ["product", "quantity", "received_quantity"]
    readonly_fields = ["received_quantity"]
    autocomplete_fields = ["product"]

    def _draft(self, obj) -> bool:
        return obj is None or obj.status == Transfer.Status.DRAFT

    def _may_edit(self, request, obj) -> bool:
        action = "add" if obj is None else "change"  # drafting one, or changing a draft
        return self._draft(obj) and request.user.has_perm(f"inventory.{action}_transfer")

    def get_extra(self, request, obj=None, **kwargs) -> int:
        return 1 if self._draft(obj) else 0

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("inventory.view_transfer") or self._may_edit(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._may_edit(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._may_edit(request, obj)


class TransferCancelForm(forms.Form):
    """Nothing to fill in: the page says what a cancel does, the button confirms it."""


@admin.register(Transfer)
class TransferAdmin(
    ServiceRefusalAdminMixin, AuditHistoryAdminMixin, FSMAdminMixin, admin.ModelAdmin
):
    """Transfers: drafted and changed here through ``inventory.transfers``, moved on with the
    Dispatch / Receive all / Cancel buttons (a cancel asks first)."""

    fsm_fields = ["status"]
    inlines = [TransferLineInline]
    # At 1,366 px: the locations by code (their names on hover), as the ledger shows them.
    list_display = ["number", "status", "source", "destination", "in_transit", "created"]
    list_filter = ["status", "from_location", "to_location"]
    list_select_related = ["from_location", "to_location"]
    search_fields = ["number", "note"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("lines")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["from_location", "to_location", "note"]
        shown = ["number", "status", "from_location", "to_location", "note", "in_transit"]
        shown += ["created_by_shown", "created_at"]
        shown += [f for f in ("dispatched_at", "received_at", "cancelled_at") if getattr(obj, f)]
        return shown

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        fixed = ["number", "status", "from_location", "to_location", "in_transit"]
        fixed += ["created_by_shown", "created_at", "dispatched_at", "received_at", "cancelled_at"]
        if obj.status != Transfer.Status.DRAFT:
            fixed.append("note")
        return fixed

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in ("from_location", "to_location"):
            kwargs["queryset"] = Location.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="From", ordering="from_location__code")
    def source(self, transfer: Transfer) -> str:
        return _location_shown(transfer.from_location)

    @admin.display(description="To", ordering="to_location__code")
    def destination(self, transfer: Transfer) -> str:
        return _location_shown(transfer.to_location)

    @admin.display(description="In transit")
    def in_transit(self, transfer: Transfer) -> str:
        return f"{units_in_transit(transfer):,}"  # "7,404", as the other stock columns

    @admin.display(description="Created", ordering="created_at")
    def created(self, transfer: Transfer) -> str:
        return short_moment(transfer.created_at)

    @admin.display(description="Created by")
    def created_by_shown(self, transfer: Transfer) -> str:
        return actor_in_words(transfer.created_by)  # "wanda", not "user:wanda"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a transfer is history: cancel it instead

    def save_model(self, request, obj, form, change):
        """Saved by ``save_related`` through the services, with its lines."""

    def save_related(self, request, form, formsets, change):
        if change and not obj_is_draft(form.instance):
            return  # its lines and note are history now: only the buttons move it on
        actor = Actor.from_request(request)
        lines: dict[int, int] = {}
        for formset in formsets:
            for line_form in formset.forms:
                data = getattr(line_form, "cleaned_data", None) or {}
                if data.get("DELETE") or not data.get("product"):
                    continue
                product = getattr(data["product"], "pk", data["product"])
                lines[product] = lines.get(product, 0) + data["quantity"]
        if not change:
            created = transfers.transfer_create(
                actor=actor,
                from_location=form.cleaned_data["from_location"],
                to_location=form.cleaned_data["to_location"],
                lines=lines,
                note=form.cleaned_data.get("note", ""),
            )
            form.instance.pk, form.instance.number = created.pk, created.number
            return
        edited = form.has_changed() or any(fs.has_changed() for fs in formsets)
        if edited:
            transfers.transfer_update(
                actor=actor,
                transfer=form.instance.pk,
                lines=lines,
                note=form.cleaned_data.get("note", form.instance.note),
            )

    def construct_change_message(self, request, form, formsets, add=False):
        # The services' audit entries say what changed.
        return []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            if not self.has_change_permission(request, obj):
                context[self.fsm_context_key] = []
            if obj.status != Transfer.Status.DRAFT:
                # Nothing to save once it left: only its buttons move it on.
                context.update(
                    show_save=False,
                    show_save_and_continue=False,
                    show_save_and_add_another=False,
                )
            context["title"] = f"{obj.get_status_display()} transfer {obj.number}"
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<int:transfer_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="inventory_transfer_cancel",
            ),
            *super().get_urls(),
        ]

    def response_change(self, request, obj):
        name = request.POST.get(self.fsm_post_param)
        if not name:
            return super().response_change(request, obj)
        if name == "cancel":
            return HttpResponseRedirect(reverse("admin:inventory_transfer_cancel", args=[obj.pk]))
        self._move(request, obj, name)
        return HttpResponseRedirect(request.path)

    def _move(self, request, obj: Transfer, name: str) -> None:
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        step = TRANSFER_STEPS.get(name)
        if step is None:
            raise PermissionDenied
        service, done = step
        try:
            service(actor=Actor.from_request(request), transfer=obj.pk)
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
        else:
            self.message_user(request, f"Transfer {obj.number} {done}.", messages.SUCCESS)

    def cancel_view(self, request, transfer_id: int):
        """Say what a cancel does, then cancel through the service."""
        transfer = get_object_or_404(Transfer, pk=transfer_id)
        if not self.has_change_permission(request, transfer):
            raise PermissionDenied
        back = reverse("admin:inventory_transfer_change", args=[transfer.pk])
        form = TransferCancelForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            self._move(request, transfer, "cancel")
            return HttpResponseRedirect(back)
        return TemplateResponse(
            request,
            "inventory/transfer_cancel_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Cancel this transfer?",
                "original": transfer,
                "in_transit": units_in_transit(transfer),
                "form": form,
                "adminform": AdminForm(form, [(None, {"fields": []})], prepopulated_fields={}),  # type: ignore[arg-type]
                "back_url": back,
                "page_label": "Cancel",
                "submit_label": "Cancel the transfer",
                "back_label": "Back to the transfer",
            },
        )


def units_in_transit(transfer: Transfer) -> int:
    """Return how many units of a dispatched transfer have not arrived yet."""
    if transfer.status != Transfer.Status.IN_TRANSIT:
        return 0
    return sum(line.outstanding for line in transfer.lines.all())


def obj_is_draft(transfer: Transfer) -> bool:
    return transfer.status == Transfer.Status.DRAFT


# What a button does, and what staff read after it: "Transfer TR-… dispatched."
TRANSFER_STEPS = {
    "dispatch": (transfers.transfer_dispatch, "dispatched"),
    "receive": (transfers.transfer_receive, "received"),
    "cancel": (transfers.transfer_cancel, "cancelled"),
}
