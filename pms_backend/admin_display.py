"""How staff screens word what the records store: who did something, and amounts of money."""

from decimal import Decimal


def actor_in_words(label: str) -> str:
    """Return an actor label as the audit log stores it (``user:ada``, ``api_key:AbC (shop)``,
    ``job:expire``) the way staff say it: ``ada``, ``API key AbC (shop)``, ``the expire job``."""
    kind, colon, name = label.partition(":")
    words = {"user": name, "api_key": f"API key {name}", "job": f"the {name} job"}
    return words.get(kind, label) if colon else label


def money(amount: Decimal | None, currency: str) -> str:
    """Return an amount as staff read it: ``1,234.50 EUR``."""
    return "" if amount is None else f"{amount:,.2f} {currency}"
