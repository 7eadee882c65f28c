"""What staff read for an audit entry's action: "Order cancelled", never ``order.cancel``.

The log stores the codes the apps record (``<object>.<what happened>``); staff filter and
search by them. Each app names its own codes in an ``audit_actions.py`` module, found when
the audit app is ready (as the admin finds each app's ``admin.py``), so the audit app names
no domain. A code no app names still reads as words: ``webhook_endpoint.paused`` ->
"Webhook endpoint paused", acronyms in capitals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_names: dict[str, str] = {}

# Written in capitals (or as a phrase) wherever they stand in a code.
ACRONYMS = {"api": "API", "sku": "SKU", "url": "URL", "ip": "IP", "id": "ID"}


def register_action_names(names: Mapping[str, str]) -> None:
    """Name audit action codes as staff read them (``{"order.cancel": "Order cancelled"}``).

    Registering a code again (a reloaded app) replaces its name.
    """
    _names.update(names)


def named_actions() -> frozenset[str]:
    """Return the codes the apps have named."""
    return frozenset(_names)


def action_in_words(code: str) -> str:
    """Return the name staff read for ``code``: the registered one, else the code in words."""
    name = _names.get(code)
    if name is not None:
        return name
    words = code.replace(".", " ").replace("_", " ").split()
    words = [ACRONYMS.get(word.lower(), word.lower()) for word in words]
    if not words:
        return code
    return words[0][:1].upper() + words[0][1:] + "".join(f" {word}" for word in words[1:])


def action_choices(codes: Iterable[str]) -> list[tuple[str, str]]:
    """Return ``(code, name)`` pairs for ``codes``, in the order of their names."""
    return sorted(((code, action_in_words(code)) for code in set(codes)), key=lambda c: c[1])
