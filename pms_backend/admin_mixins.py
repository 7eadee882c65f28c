"""Behaviour every staff screen shares: audit history, service refusals as messages, and the
words for who did something and for amounts of money."""

from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse

from pms_backend.errors import DomainError


class AuditHistoryAdminMixin:
    """Replace Django's own history page with the object's audit entries."""

    def history_view(self, request, object_id, extra_context=None):
        query = urlencode(
            {"object_type": self.model._meta.label_lower, "object_id": str(object_id)}
        )
        return HttpResponseRedirect(f"{reverse('admin:audit_auditlog_changelist')}?{query}")


class ServiceRefusalAdminMixin:
    """Show a service's refusal (a ``DomainError``) as an error message, not a 500.

    The admin wraps the save in a transaction, so nothing of the refused change is kept.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ReadOnlyAdminMixin:
    """A record nobody adds, changes or deletes from the admin (logs, ledgers, outboxes)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def actor_in_words(label: str) -> str:
    """Return an actor label as the audit log stores it (``user:ada``, ``api_key:AbC (shop)``,
    ``job:expire``) the way staff say it: ``ada``, ``API key AbC (shop)``, ``the expire job``."""
    kind, colon, name = label.partition(":")
    words = {"user": name, "api_key": f"API key {name}", "job": f"the {name} job"}
    return words.get(kind, label) if colon else label


def money(amount: Decimal | None, currency: str) -> str:
    """Return an amount as staff read it: ``1,234.50 EUR``."""
    return "" if amount is None else f"{amount:,.2f} {currency}"
