"""Scope checks: every API view names the scope each of its actions needs."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.scopes import staff_has_permissions, staff_has_scope
from pms_backend.plurals import noun


def principal_has_scope(request, scope: str) -> bool:
    """Return whether the request's key or staff session holds ``scope``."""
    if isinstance(request.auth, ApiKey):
        return request.auth.has_scope(scope)
    return staff_has_scope(request.user, scope)


def staff_permissions_for(view, request) -> tuple[str, ...] | None:
    """Return the model permissions ``view`` asks of a staff session for this action
    (``staff_permissions``, keyed like ``required_scopes``), or None: the scope's own."""
    declared = getattr(view, "staff_permissions", None) or {}
    action = getattr(view, "action", None)
    if action and action in declared:
        return declared[action]
    return declared.get(request.method)


def required_scope(view, request) -> str | None:
    """Return the scope ``view`` declares for this request's action or method."""
    scopes = getattr(view, "required_scopes", None) or {}
    action = getattr(view, "action", None)
    if action and action in scopes:
        return scopes[action]
    return scopes.get(request.method)


class HasScope(BasePermission):
    """Allow a request whose credentials hold the scope the view declares.

    A view or action that declares no scope is refused: forgetting one fails closed.
    """

    message = "Your credentials lack the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        scope = required_scope(view, request)
        if request.auth is None and not (request.user and request.user.is_authenticated):
            return False  # DRF answers 401 for this
        if scope is None and request.method == "OPTIONS":
            # Which methods exist is no secret (the schema is public); DRF's metadata
            # lists only the actions these credentials may take.
            return True
        if scope is None:
            # A method the view does not serve at all: let it answer 405 instead.
            method = request.method.lower()
            return method not in view.http_method_names or not hasattr(view, method)
        if not isinstance(request.auth, ApiKey):
            # A staff session may do through the API what the admin lets it do: the model
            # permissions the admin asks for the same records, action by action.
            perms = staff_permissions_for(view, request)
            if perms is not None:
                if staff_has_permissions(request.user, perms):
                    return True
                self.message = (
                    f"Your staff account lacks the {noun(perms, 'permission')} {', '.join(perms)}."
                )
                return False
        if principal_has_scope(request, scope):
            return True
        self.message = f"Your credentials lack the scope {scope!r}."
        return False
