"""Staff screens for orders: items, customer, transition buttons, refund with restock."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django_fsm.admin import FSMAdminMixin

from audit.actors import Actor
from orders import services
from orders.models import Order, OrderItem
from pms_backend.admin_mixins import AuditHistoryAdminMixin, ServiceRefusalAdminMixin
from pms_backend.encryption.ciphers import blind_index
from pms_backend.errors import DomainError


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    fields = ["product", "sku", "name", "unit_price", "quantity", "line_total"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class RefundForm(forms.Form):
    restock = forms.BooleanField(
        required=False, help_text="Put the goods back on hand (a return in the stock ledger)."
    )


@admin.register(Order)
class OrderAdmin(ServiceRefusalAdminMixin, AuditHistoryAdminMixin, FSMAdminMixin, admin.ModelAdmin):
    fsm_fields = ["status"]
    inlines = [OrderItemInline]
    list_display = [
        "number",
        "status",
        "customer_name",
        "total",
        "currency",
        "created_at",
        "reserved_until",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["number"]
    search_help_text = "Order number, or a customer's exact e-mail address."
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "number",
        "status",
        "customer_name",
        "customer_email",
        "shipping_address",
        "total",
        "currency",
        "reserved_until",
        "api_key",
        "placed_by",
        "cancellation_reason",
        "restocked",
        "created_at",
        "processing_at",
        "completed_at",
        "cancelled_at",
        "refunded_at",
    ]
    readonly_fields = fields

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
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<uuid:order_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="orders_order_refund",
            ),
            *super().get_urls(),
        ]

    def response_change(self, request, obj):
        name = request.POST.get(self.fsm_post_param)
        if not name:
            return super().response_change(request, obj)
        if name == "refund":
            return HttpResponseRedirect(reverse("admin:orders_order_refund", args=[obj.pk]))
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
        self.message_user(request, f"Order {obj.number}: {name} done.", messages.SUCCESS)
        return True

    def refund_view(self, request, order_id):
        """Ask whether to restock, then refund through the service."""
        order = get_object_or_404(Order, pk=order_id)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        # An unticked box posts no field: the method, not the data, says the form was sent.
        form = RefundForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            self._transition(request, order, "refund", restock=form.cleaned_data["restock"])
            return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))
        return TemplateResponse(
            request,
            "orders/refund_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Refund order {order.number}",
                "order": order,
                "form": form,
            },
        )
