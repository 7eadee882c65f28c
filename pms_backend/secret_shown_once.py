"""A new secret (an API key, a webhook signing secret) shown once, on the page the
creating POST redirects to (POST-redirect-GET: a reload creates nothing again).

Between the POST and that page the secret waits in the session, encrypted and bound to
its object, never in a URL or a message (messages travel in cookies); reading it removes
it, so a second view finds nothing.
"""

from __future__ import annotations

from django.db.models import Model
from django.http import HttpRequest

from pms_backend.encryption.ciphers import DecryptionError, decrypt, encrypt


def _aad(obj: Model, binding: str) -> bytes:
    return f"{obj._meta.label_lower}:{obj.pk}:{binding}:shown-once".encode()


def secret_keep(
    request: HttpRequest, *, slot: str, obj: Model, secret: str, binding: str = ""
) -> None:
    """Keep ``secret`` of ``obj`` for one display; ``binding`` ties it to more than the
    object's id (an API key's prefix). A newer secret in the same slot replaces it."""
    request.session[slot] = {"pk": str(obj.pk), "token": encrypt(secret, aad=_aad(obj, binding))}


def secret_take(request: HttpRequest, *, slot: str, obj: Model, binding: str = "") -> str | None:
    """Return the secret kept for ``obj`` and forget it; None when there is none (already
    shown, or kept for another object)."""
    waiting = request.session.get(slot)
    if not waiting or waiting.get("pk") != str(obj.pk):
        return None
    del request.session[slot]
    try:
        return decrypt(waiting["token"], aad=_aad(obj, binding))
    except DecryptionError:  # the encryption keys changed in between
        return None
