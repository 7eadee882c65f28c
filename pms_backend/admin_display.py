"""How staff screens word what the records store: who did something, when, amounts of
money, and long names cut to fit a list column."""

import re
from datetime import datetime
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localtime


def actor_in_words(label: str) -> str:
    """Return an actor label as the audit log stores it (``user:ada``, ``api_key:AbC (shop)``,
    ``job:expire``) the way staff say it: ``ada``, ``API key AbC (shop)``, ``the expire job``."""
    kind, colon, name = label.partition(":")
    words = {"user": name, "api_key": f"API key {name}", "job": f"the {name} job"}
    return words.get(kind, label) if colon else label


def money(amount: Decimal | None, currency: str) -> str:
    """Return an amount as staff read it: ``1,234.50 EUR``."""
    return "" if amount is None else f"{amount:,.2f} {currency}"


def short_moment(moment: datetime | None) -> str:
    """Return a moment as a list column shows it: ``2026-12-06 13:42`` (local time)."""
    return "" if moment is None else f"{localtime(moment):%Y-%m-%d %H:%M}"


def cut_to_fit(text: str, limit: int) -> str | SafeString:
    """Return ``text`` whole when it fits ``limit`` characters, else its start with an
    ellipsis, the whole text in the title (shown on hover)."""
    if len(text) <= limit:
        return text
    return format_html('<span title="{}">{}…</span>', text, text[: limit - 1].rstrip())


def breakable(code: str) -> SafeString:
    """Return a code with no spaces (``orders.max_quantity_per_line``) so that a narrow
    column breaks it after a dot, underscore, hyphen or slash, never inside a word."""
    parts = re.findall(r"[^._/-]*[._/-]?", code)
    return format_html_join(mark_safe("<wbr>"), "{}", ((part,) for part in parts if part))
