"""Audit what changes who may do what: logins, failed logins, staff flags, groups and
permissions."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from audit.actors import Actor
from audit.context import current_actor
from audit.services import audit_record
from pms_backend.encryption.ciphers import blind_index

User = get_user_model()
_FLAGS = ("is_active", "is_staff", "is_superuser")


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    with transaction.atomic():
        audit_record(
            actor=Actor(user=user, request_id=getattr(request, "request_id", ""), ip=_ip(request)),
            action="auth.login",
            target=user,
        )


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs):
    if user is None:
        return
    with transaction.atomic():
        audit_record(
            actor=Actor(user=user, request_id=getattr(request, "request_id", ""), ip=_ip(request)),
            action="auth.logout",
            target=user,
        )


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs):
    """Record a failed login: a known user by name, an unknown name only as a keyed hash.

    What was typed into the username box of a failed login is often a password (typed
    into the wrong box); the log keeps entries forever, so an unknown name is never
    stored, only its blind index (HMAC keyed by ``PMS_BLIND_INDEX_KEY``, outside the
    database): repeated attempts with one name still show as one value.
    """
    if getattr(request, "axes_locked_out", False):
        return  # refused by the lockout, which has one audit entry of its own (lockout.py)
    # Django has already masked the password in ``credentials``.
    username = str(credentials.get(User.USERNAME_FIELD, credentials.get("username", "")))
    user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
    actor = Actor(request_id=getattr(request, "request_id", ""), ip=_ip(request))
    with transaction.atomic():
        if user is not None:
            audit_record(
                actor=actor,
                action="auth.login_failed",
                target=user,
                changes={"username": {"before": None, "after": user.get_username()}},
            )
        else:
            audit_record(
                actor=actor,
                action="auth.login_failed",
                object_type="auth.user",
                changes={
                    "unknown_username_hmac": {
                        "before": None,
                        "after": blind_index(username) if username else "",
                    }
                },
            )


@receiver(pre_save, sender=User)
def remember_flags(sender, instance, **kwargs):
    if instance.pk:
        old = sender.objects.filter(pk=instance.pk).values(*_FLAGS).first()
        instance._pms_flags_before = old


@receiver(post_save, sender=User)
def audit_flag_changes(sender, instance, created, **kwargs):
    before = {} if created else (getattr(instance, "_pms_flags_before", None) or {})
    changes = {
        flag: {"before": before.get(flag), "after": getattr(instance, flag)}
        for flag in _FLAGS
        if before.get(flag) != getattr(instance, flag)
    }
    if created or changes:
        with transaction.atomic():
            audit_record(
                actor=current_actor("user-admin"),
                action="user.created" if created else "user.permissions_changed",
                target=instance,
                changes=changes,
            )


def _audit_m2m(instance, action: str, model, pk_set, what: str) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    names = sorted(str(obj) for obj in model.objects.filter(pk__in=pk_set or []))
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    with transaction.atomic():
        audit_record(
            actor=current_actor("user-admin"),
            action=f"{instance._meta.model_name}.{what}_changed",
            target=instance,
            changes={what: {"before": None, "after": {verb: names}}},
        )


@receiver(m2m_changed, sender=User.groups.through)
def audit_user_groups(sender, instance, action, model, pk_set, **kwargs):
    _audit_m2m(instance, action, model, pk_set, "groups")


@receiver(m2m_changed, sender=User.user_permissions.through)
def audit_user_permissions(sender, instance, action, model, pk_set, **kwargs):
    _audit_m2m(instance, action, model, pk_set, "permissions")


@receiver(m2m_changed, sender=Group.permissions.through)
def audit_group_permissions(sender, instance, action, model, pk_set, **kwargs):
    _audit_m2m(instance, action, model, pk_set, "permissions")
