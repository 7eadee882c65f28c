"""The order page's refunds and returns: what was paid back and sent back, and the forms
that do it (refund part of the order; request, receive, refund or cancel a return). Each
form calls the same service as the API; a refusal is shown on the form, nothing written."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import AdminForm
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from audit.actors import Actor
from inventory.models import Location
from inventory.services import default_location
from orders import refunds, returns, selectors
from orders.models import Order, OrderItem, Return
from pms_backend.admin_display import actor_in_words, cut_to_fit, money, short_moment
from pms_backend.admin_mixins import ReadOnlyAdminMixin
from pms_backend.errors import DomainError

REFUND_PERMISSION = "orders.add_refund"
REQUEST_PERMISSION = "orders.add_return"
RECEIVE_PERMISSION = "orders.change_return"
_CELLS = "<td>{}</td>" * 5
NONE_ROW = mark_safe("<tr><td>None.</td></tr>")

if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin  # what the mixin is mixed into
else:
    _AdminBase = object

# What a return's number looks like ("RMA-…"): anything else is no return.
RETURN_NUMBER = re.compile(r"RMA-[0-9A-Za-z]{1,16}")


def _units_field(item: OrderItem, most: int, what: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=f"{item.sku} · {item.name}",
        min_value=0,
        max_value=most,
        required=False,
        initial=0,
        help_text=f"Units to {what}: at most {most} ({money(item.unit_price, '').strip()} each).",
        widget=forms.NumberInput(attrs={"class": "vIntegerField", "data-product": item.product_id}),
    )


def _amount_field(help_text: str, initial=None) -> forms.DecimalField:
    return forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        initial=initial,
        help_text=help_text,
    )


class _LinesForm(forms.Form):
    """Units per order line (``units_<product>``), then the form's own fields."""

    def __init__(self, *args, lines: list[tuple[OrderItem, int]], what: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.items = {item.product_id: item for item, _ in lines}
        fields = {
            f"units_{item.product_id}": _units_field(item, most, what) for item, most in lines
        }
        self.fields = {**fields, **self.fields}

    def units(self) -> dict[int, int]:
        return {
            pid: self.cleaned_data.get(f"units_{pid}") or 0
            for pid in self.items
            if self.cleaned_data.get(f"units_{pid}")
        }


class RefundForm(_LinesForm):
    amount = _amount_field(
        "Leave empty to pay back the units' price. An amount alone is a goodwill refund."
    )
    reason = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60})
    )

    def clean(self):
        cleaned = super().clean() or {}
        if not self.errors and not self.units() and cleaned.get("amount") is None:
            raise forms.ValidationError("Enter units to refund, or an amount.")
        return cleaned


class ReturnRequestForm(_LinesForm):
    reason = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60})
    )

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not self.units():
            raise forms.ValidationError("Enter the units coming back.")
        return cleaned


class ReceiveForm(forms.Form):
    """Per return line: units restocked (at a location) and units written off."""

    def __init__(self, *args, rma_lines, **kwargs):
        super().__init__(*args, **kwargs)
        places = Location.objects.filter(is_active=True).order_by("priority", "id")
        first = default_location()
        self.products = []
        for line in rma_lines:
            pid = line.item.product_id
            self.products.append(pid)
            label = f"{line.item.sku} · {line.item.name} ({line.quantity} asked back)"
            self.fields[f"restocked_{pid}"] = forms.IntegerField(
                label=f"{label}: restock",
                min_value=0,
                max_value=line.quantity,
                required=False,
                initial=line.quantity if line.item.stock_tracked else 0,
                help_text="Units back on hand, at the location below.",
            )
            self.fields[f"location_{pid}"] = forms.ModelChoiceField(
                label="at",
                queryset=places,
                initial=first,
                required=False,
                to_field_name="code",
            )
            self.fields[f"damaged_{pid}"] = forms.IntegerField(
                label="damaged",
                min_value=0,
                max_value=line.quantity,
                required=False,
                initial=0,
                help_text="Units written off: no stock comes back.",
            )

    def lines(self) -> list[dict]:
        out = []
        for pid in self.products:
            restocked = self.cleaned_data.get(f"restocked_{pid}") or 0
            damaged = self.cleaned_data.get(f"damaged_{pid}") or 0
            if restocked or damaged:
                place = self.cleaned_data.get(f"location_{pid}")
                line = {"product": pid, "restocked": restocked, "damaged": damaged}
                if restocked and place is not None:
                    line["location"] = place.code
                out.append(line)
        return out


class ReturnRefundForm(forms.Form):
    amount = _amount_field("The price of the units received; you may pay back less.")
    reason = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60})
    )


class ReturnCancelForm(forms.Form):
    reason = forms.CharField(
        max_length=200, required=False, widget=forms.TextInput(attrs={"size": 60})
    )


class RefundsAndReturnsAdminMixin(_AdminBase):
    """Mixed into OrderAdmin: the section on the order page and its forms' pages."""

    @staticmethod
    def _section_links(request, order: Order) -> list[tuple[str, str, str]]:
        links = []
        if request.user.has_perm(REFUND_PERMISSION) and order.status in refunds.REFUNDABLE:
            links.append(
                (
                    "refund-part",
                    reverse("admin:orders_order_refund_part", args=[order.pk]),
                    "Refund part…",
                )
            )
        if request.user.has_perm(REQUEST_PERMISSION) and order.status in returns.RETURNABLE:
            links.append(
                (
                    "request-return",
                    reverse("admin:orders_order_return_add", args=[order.pk]),
                    "Request a return…",
                )
            )
        return links

    def refunds_and_returns_for(self, request, order: Order) -> str:
        """The refunds and returns of ``order`` as the order page lists them, with the
        buttons of what ``request.user`` may do."""
        refund_rows = format_html_join(
            "",
            '<tr class="refund" data-number="{}">' + _CELLS + "</tr>",
            (
                (
                    r.number,
                    r.number,
                    money(r.amount, order.currency),
                    ", ".join(f"{line.quantity} x {line.item.sku}" for line in r.lines.all())
                    or "amount only",
                    r.reason,
                    f"{short_moment(r.created_at)} by {actor_in_words(r.created_by)}",
                )
                for r in selectors.refund_list(order=order)
            ),
        )
        return_rows = format_html_join(
            "",
            '<tr class="return" data-number="{}" data-status="{}">' + _CELLS + "</tr>",
            (
                (
                    rma.number,
                    rma.status,
                    rma.number,
                    rma.get_status_display(),
                    ", ".join(self._return_line_words(line) for line in rma.lines.all()),
                    rma.reason,
                    self._return_buttons(request, order, rma),
                )
                for rma in selectors.return_list(order=order)
            ),
        )
        links = format_html_join(
            " ", '<a class="button {}" href="{}">{}</a>', self._section_links(request, order)
        )
        return format_html(
            '<div class="refunds-and-returns">'
            "<p>Refunded {} of {}.</p>"
            '<table class="refunds"><caption>Refunds</caption>{}</table>'
            '<table class="returns"><caption>Returns</caption>{}</table>'
            '<p class="refund-actions">{}</p></div>',
            money(order.refunded_amount, order.currency),
            money(order.total, order.currency),
            refund_rows or NONE_ROW,
            return_rows or NONE_ROW,
            links,
        )

    @staticmethod
    def _return_line_words(line) -> str:
        words = f"{line.quantity} x {line.item.sku}"
        if line.quantity_restocked:
            words += f" ({line.quantity_restocked} restocked at {line.location.code}"
            words += f", {line.quantity_damaged} damaged)" if line.quantity_damaged else ")"
        elif line.quantity_damaged:
            words += f" ({line.quantity_damaged} damaged)"
        return words

    @staticmethod
    def _return_buttons(request, order: Order, rma: Return) -> str:
        steps = []
        if rma.status == Return.Status.REQUESTED and request.user.has_perm(RECEIVE_PERMISSION):
            steps += [("receive", "Receive…"), ("cancel", "Cancel…")]
        if rma.status == Return.Status.RECEIVED and request.user.has_perm(REFUND_PERMISSION):
            steps.append(("refund", "Refund…"))
        return format_html_join(
            " ",
            '<a class="button return-{}" href="{}">{}</a>',
            (
                (
                    step,
                    reverse(f"admin:orders_order_return_{step}", args=[order.pk, rma.number]),
                    label,
                )
                for step, label in steps
            ),
        )

    def refund_return_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<uuid:order_id>/refunds/add/",
                view(self.refund_part_view),
                name="orders_order_refund_part",
            ),
            path(
                "<uuid:order_id>/returns/add/",
                view(self.return_add_view),
                name="orders_order_return_add",
            ),
            path(
                "<uuid:order_id>/returns/<str:number>/receive/",
                view(self.return_receive_view),
                name="orders_order_return_receive",
            ),
            path(
                "<uuid:order_id>/returns/<str:number>/refund/",
                view(self.return_refund_view),
                name="orders_order_return_refund",
            ),
            path(
                "<uuid:order_id>/returns/<str:number>/cancel/",
                view(self.return_cancel_view),
                name="orders_order_return_cancel",
            ),
        ]

    # --- the pages ------------------------------------------------------------------------

    def _page(self, request, order, form, *, title, submit_label, intro, run, done):
        """Show ``form``; once valid, ``run(actor, form)`` through the service and go back
        to the order with ``done`` (its refusal is shown on the form)."""
        back = reverse("admin:orders_order_change", args=[order.pk])
        if request.method == "POST" and form.is_valid():
            try:
                run(Actor.from_request(request), form)
            except DomainError as exc:
                form.add_error(None, exc.detail)
            else:
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(back)
        return TemplateResponse(
            request,
            "orders/refund_part_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": Order._meta,
                "original": order,
                "title": title,
                "intro": intro,
                "form": form,
                "adminform": AdminForm(
                    form, [(None, {"fields": list(form.fields)})], prepopulated_fields={}
                ),
                "back_url": back,
                "page_label": title,
                "submit_label": submit_label,
            },
        )

    @staticmethod
    def _order(request, order_id, permission: str) -> Order:
        # The permission first: staff without it learn nothing, not even whether it exists.
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return get_object_or_404(Order, pk=order_id)

    def refund_part_view(self, request, order_id):
        order = self._order(request, order_id, REFUND_PERMISSION)
        units = [(item, refunds.refundable_units(item)) for item in order.items.all()]
        lines = [(item, n) for item, n in units if n > 0]
        data = request.POST if request.method == "POST" else None
        form = RefundForm(data, lines=lines, what="refund")
        left = money(order.total - order.refunded_amount, order.currency)
        return self._page(
            request,
            order,
            form,
            title="Refund part of the order",
            submit_label="Refund",
            intro=f"Order {order.number}: {left} can still be refunded. A refund cannot be undone; "
            "it moves no stock (goods come back through a return).",
            run=lambda actor, f: refunds.refund_create(
                actor=actor,
                order_id=order.pk,
                lines=f.units(),
                amount=f.cleaned_data.get("amount"),
                reason=f.cleaned_data.get("reason", ""),
            ),
            done=f"Order {order.number}: refund paid.",
        )

    def return_add_view(self, request, order_id):
        order = self._order(request, order_id, REQUEST_PERMISSION)
        taken = returns.units_returned(order)
        units = [(item, returns.returnable_units(item, taken)) for item in order.items.all()]
        lines = [(item, n) for item, n in units if n > 0]
        data = request.POST if request.method == "POST" else None
        form = ReturnRequestForm(data, lines=lines, what="return")
        return self._page(
            request,
            order,
            form,
            title="Request a return",
            submit_label="Request the return",
            intro=f"Order {order.number}: the units the customer sends back.",
            run=lambda actor, f: returns.return_request(
                actor=actor,
                order_id=order.pk,
                lines=f.units(),
                reason=f.cleaned_data.get("reason", ""),
            ),
            done=f"Order {order.number}: return requested.",
        )

    def _rma(self, order: Order, number: str) -> Return:
        if not RETURN_NUMBER.fullmatch(number):  # a NUL byte would reach PostgreSQL
            raise Http404(f"Order {order.number} has no return {number!r}.")
        return get_object_or_404(Return, order=order, number=number)

    def return_receive_view(self, request, order_id, number):
        order = self._order(request, order_id, RECEIVE_PERMISSION)
        rma = self._rma(order, number)
        data = request.POST if request.method == "POST" else None
        form = ReceiveForm(data, rma_lines=list(rma.lines.select_related("item")))
        return self._page(
            request,
            order,
            form,
            title=f"Receive return {rma.number}",
            submit_label="Receive",
            intro=f"What came back of return {rma.number}: restocked units go back on hand at the "
            "location chosen, damaged ones are written off.",
            run=lambda actor, f: returns.return_receive(
                actor=actor, order_id=order.pk, number=rma.number, lines=f.lines()
            ),
            done=f"Return {rma.number} received.",
        )

    def return_refund_view(self, request, order_id, number):
        order = self._order(request, order_id, REFUND_PERMISSION)
        rma = self._rma(order, number)
        worth = returns.received_worth(rma.lines.select_related("item"))
        data = request.POST if request.method == "POST" else None
        form = ReturnRefundForm(data, initial={"amount": worth})
        return self._page(
            request,
            order,
            form,
            title=f"Refund return {rma.number}",
            submit_label="Refund",
            intro=f"Pay back the units received of return {rma.number}: "
            f"{money(worth, order.currency)} at their price. A refund cannot be undone.",
            run=lambda actor, f: returns.return_refund(
                actor=actor,
                order_id=order.pk,
                number=rma.number,
                amount=f.cleaned_data.get("amount"),
                reason=f.cleaned_data.get("reason", ""),
            ),
            done=f"Return {rma.number} refunded.",
        )

    def return_cancel_view(self, request, order_id, number):
        order = self._order(request, order_id, RECEIVE_PERMISSION)
        rma = self._rma(order, number)
        data = request.POST if request.method == "POST" else None
        form = ReturnCancelForm(data)
        return self._page(
            request,
            order,
            form,
            title=f"Cancel return {rma.number}",
            submit_label="Cancel the return",
            intro=f"Return {rma.number}'s goods will not come (kept, or the return refused).",
            run=lambda actor, f: returns.return_cancel(
                actor=actor,
                order_id=order.pk,
                number=rma.number,
                reason=f.cleaned_data.get("reason", ""),
            ),
            done=f"Return {rma.number} cancelled.",
        )


class ReturnAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Returns across orders: the warehouse's list of what is coming back. Each is run
    (received, refunded, cancelled) from its order's page, which its row links to."""

    list_display = ["number", "status", "order_link", "units", "requested", "reason_shown"]
    list_display_links = None
    list_filter = ["status"]
    list_select_related = ["order"]
    search_fields = ["number", "order__number"]
    search_help_text = "Return number (RMA-…) or order number (PMS-…)."
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("lines__item")

    @admin.display(description="Order", ordering="order__number")
    def order_link(self, rma: Return) -> str:
        return format_html(
            '<a href="{}#refunds-and-returns">{}</a>',
            reverse("admin:orders_order_change", args=[rma.order_id]),
            rma.order.number,
        )

    @admin.display(description="Units")
    def units(self, rma: Return) -> str:
        return ", ".join(f"{line.quantity} x {line.item.sku}" for line in rma.lines.all())

    @admin.display(description="Reason")
    def reason_shown(self, rma: Return) -> str:
        # At 1,366 px: a long reason cut (whole on hover), as the order list cuts names.
        return cut_to_fit(rma.reason, 40)

    @admin.display(description="Requested", ordering="created_at")
    def requested(self, rma: Return) -> str:
        return short_moment(rma.created_at)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A return is read and run on its order's page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rma = self.get_object(request, unquote(object_id))  # None for a malformed id too
        if rma is None:
            raise Http404(f"No return is {object_id!r}.")
        return HttpResponseRedirect(
            reverse("admin:orders_order_change", args=[rma.order_id]) + "#refunds-and-returns"
        )
