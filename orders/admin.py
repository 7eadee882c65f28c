"""Staff screens for orders: items, customer, timeline, transition buttons, and the
confirmation pages of what cannot be undone (cancel with a reason, refund with restock)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import AdminForm
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime
from django_fsm.admin import FSMAdminMixin

from audit.actors import Actor
from audit.models import AuditLog
from audit.selectors import audit_entries_for
from inventory.models import Location
from orders import fulfilments, services
from orders.admin_refunds import RefundsAndReturnsAdminMixin, ReturnAdmin
from orders.models import LineAllocation, Order, OrderItem, Return
from orders.payloads import line_fulfillment_status
from orders.selectors import fulfillments_shown
from pms_backend.admin_display import actor_in_words, cut_to_fit, money, short_moment
from pms_backend.admin_mixins import AuditHistoryAdminMixin, ServiceRefusalAdminMixin
from pms_backend.encryption.ciphers import blind_index
from pms_backend.errors import DomainError

# What staff read after a move: "Order PMS-… processed."
DONE = {
    "process": "processed",
    "complete": "completed",
    "cancel": "cancelled",
    "refund": "refunded",
}
# The audit entries an order's timeline shows, with their names there.
TIMELINE_STEPS = {
    "order.created": "Placed",
    "order.process": "Processed",
    "order.complete": "Completed",
    "order.cancel": "Cancelled",
    "order.refund": "Refunded",
    "order.backorder_allocated": "Backorder allocated",
    "refund.created": "Refund",
    "return.requested": "Return requested",
    "return.received": "Return received",
    "return.refunded": "Return refunded",
    "return.cancelled": "Return cancelled",
}
CONFIRMED_TRANSITIONS = ("cancel", "refund")
# Moves that pay money back or ship goods: besides changing the order, what the pages that
# do those ask (refunding records a refund of the rest; completing ships the rest).
TRANSITION_PERMISSIONS = {"refund": "orders.add_refund", "complete": "orders.add_fulfillment"}
# The fields of an order's page; those of a status the order never reached are left out.
ONLY_WHEN = {"cancellation_reason": Order.Status.CANCELLED, "restocked": Order.Status.REFUNDED}


def _when(moment) -> str:
    return date_format(localtime(moment), "DATETIME_FORMAT")


def _after(changes: dict, field: str, default=None):
    return (changes.get(field) or {}).get("after", default)


def _cancel_note(changes: dict) -> str:
    reason = _after(changes, "cancellation_reason")
    return f"reason: {reason}" if reason else ""


def _refund_note(changes: dict) -> str:
    return "goods put back on hand" if _after(changes, "restocked") else "without restock"


def _allocated_note(changes: dict) -> str:
    allocated = _after(changes, "allocated") or []
    return ", ".join(f"{units} of product {product}" for product, units in allocated)


def _refund_paid_note(changes: dict) -> str:
    return f"{_after(changes, 'refund', '')} {_after(changes, 'amount', '')}".strip()


# What the timeline says of a step beyond its name, by audit action.
STEP_NOTES = {
    "order.cancel": _cancel_note,
    "order.refund": _refund_note,
    "order.backorder_allocated": _allocated_note,
    "refund.created": _refund_paid_note,
}


def _step_note(entry: AuditLog) -> str:
    changes = entry.changes or {}
    note = STEP_NOTES.get(entry.action)
    if note is not None:
        return note(changes)
    if entry.action.startswith("return."):
        return _after(changes, "return", "")
    return ""


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    fields = [
        "product",
        "sku",
        "name",
        "unit_price_display",
        "quantity",
        "line_total_display",
        "shipped",
        "allocated",
        "waiting",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # A line is part of its order: who may see the order sees its lines. (The roles
        # hand out no ``*_orderitem`` permissions, so Django's default, the line model's
        # own, showed them to superusers only.)
        return request.user.has_perm("orders.view_order") or request.user.has_perm(
            "orders.change_order"
        )

    @admin.display(description="Unit price")
    def unit_price_display(self, item: OrderItem) -> str:
        return money(item.unit_price, item.order.currency)

    @admin.display(description="Line total")
    def line_total_display(self, item: OrderItem) -> str:
        return money(item.line_total, item.order.currency)

    @admin.display(description="Shipped")
    def shipped(self, item: OrderItem) -> str:
        """ "2 of 3 (partial)": the units the line's fulfilments carry."""
        return format_html(
            '<span class="line-shipped" data-status="{}">{} of {} ({})</span>',
            line_fulfillment_status(item),
            item.quantity_fulfilled,
            item.quantity,
            line_fulfillment_status(item),
        )

    @admin.display(description="Reserved at")
    def allocated(self, item: OrderItem) -> str:
        """Where the line's units not shipped yet are reserved (or were, when cancelled):
        "2 at Main warehouse, 1 at City store"."""
        return format_html_join(
            ", ",
            '<span class="allocation" data-location="{}">{} at {}</span>',
            ((a.location.code, a.quantity, a.location.name) for a in item.allocations.all()),
        )

    @admin.display(description="Backordered")
    def waiting(self, item: OrderItem) -> str:
        """The line's units still waiting for stock (a backorder or preorder), if any."""
        if not item.backordered:
            return "—"
        waits = "waits" if item.order.status in Order.OPEN_STATUSES else "waited"
        return format_html(
            '<strong class="backordered">{} {} for stock</strong>', item.backordered, waits
        )

    def get_queryset(self, request):
        # The allocations and their locations in one query for all the lines.
        return (
            super()
            .get_queryset(request)
            .select_related("order", "product")
            .prefetch_related(
                Prefetch(
                    "allocations",
                    queryset=LineAllocation.objects.select_related("location").order_by(
                        "location__priority", "location_id"
                    ),
                )
            )
        )


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=Order._meta.get_field("cancellation_reason").max_length,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why the order is cancelled; kept with the order and in its audit entry.",
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the order is cancelled.")
        return reason


class RefundForm(forms.Form):
    restock = forms.BooleanField(
        required=False, help_text="Put the goods back on hand (a return in the stock ledger)."
    )


@admin.register(Order)
class OrderAdmin(
    RefundsAndReturnsAdminMixin,
    ServiceRefusalAdminMixin,
    AuditHistoryAdminMixin,
    FSMAdminMixin,
    admin.ModelAdmin,
):
    fsm_fields = ["status"]
    change_form_template = "orders/order_change_form.html"
    inlines = [OrderItemInline]
    # At 1,366 px: the dates short, a long customer name cut (whole on hover).
    list_display = ["number", "status", "customer", "total_display", "placed", "held_until"]
    list_filter = ["status", "created_at"]
    search_fields = ["number"]
    search_help_text = "Order number, or a customer's exact e-mail address."
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "number",
        "status",
        "timeline",
        "customer_name",
        "customer_email",
        "shipping_address_lines",
        "total_display",
        "shipments",
        "api_key",
        "placed_by",
        "cancellation_reason",
        "restocked",
    ]
    readonly_fields = fields

    @admin.display(description="Total", ordering="total")
    def total_display(self, order: Order) -> str:
        return money(order.total, order.currency)

    @admin.display(description="Customer")
    def customer(self, order: Order) -> str:
        return cut_to_fit(order.customer_name or "", 32)

    @admin.display(description="Placed", ordering="created_at")
    def placed(self, order: Order) -> str:
        return short_moment(order.created_at)

    @admin.display(description="Reserved until", ordering="reserved_until")
    def held_until(self, order: Order) -> str:
        # Only a pending order holds stock.
        return short_moment(order.reserved_until) if order.status == Order.Status.PENDING else ""

    @admin.display(description="Shipping address")
    def shipping_address_lines(self, order: Order) -> str:
        address = order.shipping_address or {}
        if not isinstance(address, dict):
            return str(address)
        town = " ".join(str(address[k]) for k in ("postal_code", "city") if address.get(k))
        lines = [
            address.get("name"),
            address.get("line1"),
            address.get("line2"),
            town,
            address.get("region"),
            address.get("country"),
            address.get("phone") and f"Phone: {address['phone']}",
        ]
        return format_html_join(
            "", '<span class="address-line">{}</span><br>', ((line,) for line in lines if line)
        )

    @admin.display(description="Shipments")
    def shipments(self, order: Order) -> str:
        """The order's fulfilments (where from, tracking, what), with the packing lists and,
        for an order in processing, the way to ship."""
        rows = format_html_join(
            "",
            '<tr class="fulfillment" data-number="{}"><td>{}</td><td>{}</td><td>{}</td>'
            '<td>{}</td><td>{}</td><td><a href="{}" target="_blank">Packing list</a></td></tr>',
            (
                (
                    f.number,
                    f.number,
                    f.location.name,
                    ", ".join(f"{line.quantity} x {line.item.sku}" for line in f.lines.all()),
                    " ".join(x for x in (f.carrier, f.tracking_number) if x) or "-",
                    short_moment(f.shipped_at),
                    reverse("admin:orders_order_packing_list", args=[order.pk])
                    + f"?fulfillment={f.sequence}",
                )
                for f in fulfillments_shown().filter(order=order)
            ),
        )
        table = (
            format_html(
                '<table class="fulfillments"><thead><tr><th>Number</th><th>From</th>'
                "<th>Lines</th><th>Carrier / tracking</th><th>Shipped</th><th></th></tr>"
                "</thead><tbody>{}</tbody></table>",
                rows,
            )
            if rows
            else mark_safe("<p>Nothing shipped yet.</p>")  # a constant
        )
        links = ""
        if order.status == Order.Status.PROCESSING:
            links = format_html(
                '<p><a class="button ship-link" href="{}">Ship items…</a> '
                '<a href="{}" target="_blank">Packing list of what is left</a></p>',
                reverse("admin:orders_order_ship", args=[order.pk]),
                reverse("admin:orders_order_packing_list", args=[order.pk]),
            )
        return table + links

    @admin.display(description="Timeline")
    def timeline(self, order: Order) -> str:
        """Placed, reserved until, processed, completed/cancelled/refunded: who and when."""
        steps = []
        # One query: the order's own entries (its lines' stock entries are not about it).
        for entry in audit_entries_for(order).filter(action__in=TIMELINE_STEPS).reverse():
            note = _step_note(entry)
            steps.append(
                (
                    TIMELINE_STEPS[entry.action],
                    _when(entry.created_at),
                    f"by {actor_in_words(entry.actor_label)}" + (f"; {note}" if note else ""),
                )
            )
            if entry.action == "order.created" and order.reserved_until:
                steps.append(("Reserved until", _when(order.reserved_until), ""))
        return format_html(
            '<ol class="order-timeline" style="margin:0;padding-left:1.2em">{}</ol>',
            format_html_join("", "<li><strong>{}</strong> {} <span>{}</span></li>", steps),
        )

    def get_fields(self, request, obj=None):
        return [
            name
            for name in super().get_fields(request, obj)
            if name not in ONLY_WHEN or (obj is not None and obj.status == ONLY_WHEN[name])
            # Who placed it: the API key, or a staff member; not an empty line for the other.
            if not (
                name in ("api_key", "placed_by")
                and obj is not None
                and not getattr(obj, f"{name}_id")
            )
        ]

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if "@" in search_term:
            # E-mails are encrypted; their blind index finds them without decrypting rows.
            results |= queryset.filter(customer_email_index=blind_index(search_term))
        return results, may_have_duplicates

    def has_add_permission(self, request) -> bool:
        return False  # orders come from the storefront (or the API)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        """Orders have no editable fields; only transitions change them."""

    def save_related(self, request, form, formsets, change):
        """Nothing to save: items are read-only."""

    def construct_change_message(self, request, form, formsets, add=False):
        # Django's message reads what save_related saved, which is nothing here; the
        # transition itself is in the audit log.
        return []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if not self.has_change_permission(request, obj):
            # The buttons post the change form, which a view-only user may not post.
            context[self.fsm_context_key] = []
        # Nothing on an order is edited by hand: its only buttons are the moves, and the
        # title says what the order is, not "Change order".
        context.update(show_save=False, show_save_and_continue=False)
        if obj is not None:
            context["title"] = f"{obj.get_status_display()} order"
            context["refunds_and_returns"] = self.refunds_and_returns_for(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<uuid:order_id>/ship/",
                self.admin_site.admin_view(self.ship_view),
                name="orders_order_ship",
            ),
            path(
                "<uuid:order_id>/packing-list/",
                self.admin_site.admin_view(self.packing_list_view),
                name="orders_order_packing_list",
            ),
            path(
                "<uuid:order_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="orders_order_refund",
            ),
            path(
                "<uuid:order_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="orders_order_cancel",
            ),
            *self.refund_return_urls(),
            *super().get_urls(),
        ]

    def response_change(self, request, obj):
        name = request.POST.get(self.fsm_post_param)
        if not name:
            return super().response_change(request, obj)
        if name in CONFIRMED_TRANSITIONS:
            # What cannot be undone is asked for on a page of its own first.
            return HttpResponseRedirect(reverse(f"admin:orders_order_{name}", args=[obj.pk]))
        self._transition(request, obj, name)
        return HttpResponseRedirect(request.path)

    def _may_move(self, request, order: Order, name: str) -> bool:
        extra = TRANSITION_PERMISSIONS.get(name)
        return self.has_change_permission(request, order) and (
            extra is None or request.user.has_perm(extra)
        )

    def _transition(self, request, obj: Order, name: str, **kwargs) -> bool:
        if not self._may_move(request, obj, name):
            raise PermissionDenied
        try:
            services.order_transition(
                actor=Actor.from_request(request), order_id=obj.pk, transition=name, **kwargs
            )
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return False
        self.message_user(request, f"Order {obj.number} {DONE.get(name, name)}.", messages.SUCCESS)
        return True

    def _confirmation(self, request, order_id, *, form_class, transition: str, **page):
        """Show the confirmation form of ``transition``; once sent, move and go back."""
        order = get_object_or_404(Order, pk=order_id)
        if not self._may_move(request, order, transition):
            raise PermissionDenied
        back = reverse("admin:orders_order_change", args=[order.pk])
        # An unticked box posts no field: the method, not the data, says the form was sent.
        form = form_class(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            self._transition(request, order, transition, **form.cleaned_data)
            return HttpResponseRedirect(back)
        return TemplateResponse(
            request,
            f"orders/{transition}_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": order,
                "total": money(order.total, order.currency),
                "refunded": money(order.refunded_amount, order.currency),
                "left": money(order.total - order.refunded_amount, order.currency),
                "form": form,
                "adminform": AdminForm(
                    form, [(None, {"fields": list(form.fields)})], prepopulated_fields={}
                ),
                "back_url": back,
                **page,
            },
        )

    def refund_view(self, request, order_id):
        """Ask whether to restock, then refund through the service."""
        return self._confirmation(
            request,
            order_id,
            form_class=RefundForm,
            transition="refund",
            title="Refund this order?",
            page_label="Refund",
            submit_label="Refund",
        )

    def cancel_view(self, request, order_id):
        """Ask why, then cancel through the service (the reason goes into the audit entry)."""
        return self._confirmation(
            request,
            order_id,
            form_class=CancelForm,
            transition="cancel",
            title="Cancel this order?",
            page_label="Cancel",
            submit_label="Cancel the order",
        )

    def ship_view(self, request, order_id):
        """Ship some of an order's lines through the fulfilment service."""
        order = get_object_or_404(Order, pk=order_id)
        if not request.user.has_perm("orders.add_fulfillment"):
            raise PermissionDenied
        back = reverse("admin:orders_order_change", args=[order.pk])
        items = list(order.items.prefetch_related("allocations__location"))
        form = ShipForm(request.POST if request.method == "POST" else None, items=items)
        if request.method == "POST" and form.is_valid():
            try:
                made = fulfilments.fulfillment_create(
                    actor=Actor.from_request(request), order_id=order.pk, **form.shipment()
                )
            except DomainError as exc:
                form.add_error(None, exc.detail)
            else:
                done = " The order is complete." if made.order.status == "completed" else ""
                self.message_user(
                    request,
                    f"Shipped {made.number} from {made.location.name}.{done}",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(back)
        return TemplateResponse(
            request,
            "orders/ship_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": order,
                "form": form,
                "adminform": AdminForm(
                    form, [(None, {"fields": list(form.fields)})], prepopulated_fields={}
                ),
                "back_url": back,
                "title": f"Ship order {order.number}",
                "page_label": "Ship",
                "submit_label": "Ship",
            },
        )

    def packing_list_view(self, request, order_id):
        """A printable packing list: one fulfilment's (``?fulfillment=2``), or the lines
        not shipped yet with where they are reserved."""
        order = get_object_or_404(Order, pk=order_id)
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        sequence = request.GET.get("fulfillment", "")
        if sequence:
            fulfillment = get_object_or_404(
                fulfillments_shown(),
                order=order,
                sequence=int(sequence) if sequence.isascii() and sequence.isdigit() else 0,
            )
            lines = [
                (line.item.sku, line.item.name, line.quantity, fulfillment.location.name)
                for line in fulfillment.lines.all()
            ]
            heading = f"Packing list {fulfillment.number}"
        else:
            fulfillment = None
            lines = [
                (
                    item.sku,
                    item.name,
                    item.quantity - item.quantity_fulfilled,
                    ", ".join(f"{a.quantity} at {a.location.name}" for a in item.allocations.all()),
                )
                for item in order.items.prefetch_related("allocations__location")
                if item.quantity > item.quantity_fulfilled
            ]
            heading = f"Packing list {order.number} (not shipped yet)"
        return TemplateResponse(
            request,
            "orders/packing_list.html",
            {
                "order": order,
                "fulfillment": fulfillment,
                "heading": heading,
                "address": self.shipping_address_lines(order),
                "lines": lines,
            },
        )


class ShipForm(forms.Form):
    """The units of each line to ship (what is left, to start with), where from, tracking."""

    location = forms.ModelChoiceField(
        queryset=Location.objects.filter(is_active=True).order_by("priority", "id"),
        to_field_name="code",
        help_text="Where the goods leave from; units reserved elsewhere are released there.",
    )
    carrier = forms.CharField(max_length=100, required=False)
    tracking_number = forms.CharField(max_length=100, required=False)
    tracking_url = forms.CharField(
        max_length=500, required=False, help_text="An http:// or https:// address."
    )

    def __init__(self, *args, items: list[OrderItem], **kwargs):
        super().__init__(*args, **kwargs)
        self.items = [item for item in items if fulfilments.shippable(item) > 0]
        lines = {}
        for item in self.items:
            left = fulfilments.shippable(item)
            where = ", ".join(f"{a.quantity} at {a.location.code}" for a in item.allocations.all())
            lines[f"line_{item.pk}"] = forms.IntegerField(
                label=f"{item.sku} ({item.name})",
                min_value=0,
                max_value=left,
                initial=left,
                help_text=f"{left} left to ship"
                + (f"; reserved: {where}" if where else "")
                + (f"; {item.backordered} more wait for stock" if item.backordered else ""),
            )
        self.fields = {**lines, **self.fields}
        first = next((a.location.code for item in self.items for a in item.allocations.all()), None)
        if first:
            self.fields["location"].initial = first

    def clean(self):
        cleaned = super().clean()
        if not any(cleaned.get(f"line_{item.pk}") for item in self.items):
            raise forms.ValidationError("Ship at least one unit.")
        return cleaned

    def shipment(self) -> dict:
        data = self.cleaned_data
        return {
            "lines": {
                item.product_id: data[f"line_{item.pk}"]
                for item in self.items
                if data.get(f"line_{item.pk}")
            },
            "location": data["location"],
            "carrier": data["carrier"],
            "tracking_number": data["tracking_number"],
            "tracking_url": data["tracking_url"],
        }


admin.site.register(Return, ReturnAdmin)
