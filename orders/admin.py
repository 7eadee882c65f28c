"""Staff screens for orders: items, customer, timeline, transition buttons, and the
confirmation pages of what cannot be undone (cancel with a reason, refund with restock)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import AdminForm
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django_fsm.admin import FSMAdminMixin

from audit.actors import Actor
from audit.models import AuditLog
from audit.selectors import audit_entries_for
from orders import services
from orders.models import Order, OrderItem
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
}
CONFIRMED_TRANSITIONS = ("cancel", "refund")
# The fields of an order's page; those of a status the order never reached are left out.
ONLY_WHEN = {"cancellation_reason": Order.Status.CANCELLED, "restocked": Order.Status.REFUNDED}


def _when(moment) -> str:
    return date_format(localtime(moment), "DATETIME_FORMAT")


def _step_note(entry: AuditLog) -> str:
    changes = entry.changes or {}
    if entry.action == "order.cancel":
        reason = (changes.get("cancellation_reason") or {}).get("after")
        return f"reason: {reason}" if reason else ""
    if entry.action == "order.refund":
        restocked = (changes.get("restocked") or {}).get("after")
        return "goods put back on hand" if restocked else "without restock"
    return ""


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    fields = ["product", "sku", "name", "unit_price_display", "quantity", "line_total_display"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Unit price")
    def unit_price_display(self, item: OrderItem) -> str:
        return money(item.unit_price, item.order.currency)

    @admin.display(description="Line total")
    def line_total_display(self, item: OrderItem) -> str:
        return money(item.line_total, item.order.currency)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "product")


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
class OrderAdmin(ServiceRefusalAdminMixin, AuditHistoryAdminMixin, FSMAdminMixin, admin.ModelAdmin):
    fsm_fields = ["status"]
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
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
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

    def _transition(self, request, obj: Order, name: str, **kwargs) -> bool:
        if not self.has_change_permission(request, obj):
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
        if not self.has_change_permission(request, order):
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
