"""Counts and lists in plain English: "1 entry", "67 entries", "Unknown settings: a, b".

Every message a person reads (command output, admin notices, API error details, logs)
says "1 row" or "2 rows", never "row(s)"; these two functions are how.
"""

from collections.abc import Sized


def noun(how_many: int | Sized, singular: str, plural: str = "") -> str:
    """Return the form of the noun that fits ``how_many``: a count, or a collection whose
    length counts (``noun(unknown, "setting")`` for "Unknown settings: a, b").

    ``plural`` defaults to ``singular`` + "s".
    """
    count = how_many if isinstance(how_many, int) else len(how_many)
    if count == 1:
        return singular
    return plural or f"{singular}s"


def counted(count: int, singular: str, plural: str = "") -> str:
    """Return the count, with thousands separators, and the noun that fits it:
    "1 entry", "0 entries", "1,024 entries"."""
    return f"{count:,} {noun(count, singular, plural)}"
