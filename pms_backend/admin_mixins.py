"""Behaviour every staff screen shares: audit history, and service refusals as messages."""

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
