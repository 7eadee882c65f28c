"""Product search and its facets, shared by the API and the admin.

On PostgreSQL a product matches when every word of the search is in its search row
(``catalog.models.ProductSearch``: the last word as a prefix, so typing finds as it goes),
ranked name over SKU, barcode and option values over description and attributes; when no
product has every word, those whose name is close to the search (trigram word similarity:
"tshirt" and "t-shrt" find "T-shirt"; not for a search with a digit, which names a code),
closest first. On SQLite (development) every word must appear in the name, SKU,
barcode or description of the product or the SKU or barcode of one of its variants, and
the list keeps its own order.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from typing import Any

from django.contrib.postgres.lookups import TrigramWordSimilar
from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from catalog.availability import in_stock_condition
from catalog.models import Category, Product, ProductSearch

MAX_SEARCH_LENGTH = 200
# The name of the rank a search orders by (the pagination remembers searches' counts).
SEARCH_RANK = "search_rank"
# Marks a list filtered by stock, whose count no catalog version covers.
STOCK_FILTERED = "stock_filtered"
# Words past these are ignored: a search box is not a document.
MAX_SEARCH_WORDS = 10
# The least trigram word similarity of a name to the search that counts as a match: 0.5
# takes "tshirt" (0.57) and "oxfrd" (0.5) to "T-shirt" and "Oxford", not "shirt" to
# "Skirt" (0.33). Shorter searches than TYPO_MIN_LENGTH are matched by prefix alone.
TYPO_THRESHOLD = 0.5
TYPO_MIN_LENGTH = 4

# Letters and digits: anything else (hyphens, dots, punctuation) separates words, as
# catalog_search_words() does to the indexed text (migration 0006).
_WORD = re.compile(r"[^\W_]+")

# `name %> search`: the index-backed form of word_similarity(search, name) >= threshold.
ProductSearch._meta.get_field("name").register_lookup(TrigramWordSimilar)


def search_words(text: str) -> list[str]:
    """Return the words of a search, lower-cased, at most ``MAX_SEARCH_WORDS``."""
    return [word.lower() for word in _WORD.findall(text)][:MAX_SEARCH_WORDS]


def product_search(queryset: QuerySet[Product], text: str) -> QuerySet[Product]:
    """Return the products of ``queryset`` that match ``text``, best first on PostgreSQL.

    A search without a letter or digit matches nothing (an empty list, not every product).
    """
    words = search_words(text)
    if not words:
        return queryset.none()
    if connection.vendor != "postgresql":
        return plain_match(queryset, words)
    return ranked_match(queryset, words)


def ranked_match(queryset: QuerySet[Product], words: list[str]) -> QuerySet[Product]:
    """Products with every word (the last as a prefix), ranked by where the words are;
    when none has them all, products whose name is close to the words, closest first.
    Ordered by ``search_rank``, then id (stable pages)."""
    # The words are letters and digits only: quoted, they are safe in a tsquery.
    terms = [f"'{word}'" for word in words]
    terms[-1] += ":*"
    query = SearchQuery(" & ".join(terms), search_type="raw", config="simple")
    found = queryset.filter(search__document=query)
    text = " ".join(words)
    # Typos are looked for only when the words find nothing: near names would bury the
    # exact ones, and comparing every name costs more than the index lookup. A search
    # with a digit names a code (SKU, barcode, model number): exact words only.
    if len(text) >= TYPO_MIN_LENGTH and not any(c.isdigit() for c in text) and not found.exists():
        _set_typo_threshold()
        found = queryset.filter(search__name__trigram_word_similar=text)
        rank: Func = TrigramWordSimilarity(text, "search__name")
    else:
        rank = SearchRank(F("search__document"), query)
    # Ordered by the search row's columns alone: the database sorts the matches before it
    # reads a page of products. Ties by id, not name: comparing names in the database's
    # collation cost a broad search (20,000 matches) most of its time.
    return found.alias(**{SEARCH_RANK: rank}).order_by(f"-{SEARCH_RANK}", "search__product_id")


def _set_typo_threshold() -> None:
    # The threshold of `%>` is a setting of the session (pg_trgm's default, 0.6, misses
    # most typos); set on each search, as a pooled connection may be new.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, false)",
            [str(TYPO_THRESHOLD)],
        )


def plain_match(queryset: QuerySet[Product], words: list[str]) -> QuerySet[Product]:
    """Every word in the name, SKU, barcode or description, or in a variant's SKU or
    barcode (case-insensitive substrings): the fallback where there is no full-text
    index (SQLite); any database runs it."""
    for word in words:
        variant_hit = Product.objects.filter(parent_id=OuterRef("pk")).filter(
            Q(sku__icontains=word) | Q(barcode__icontains=word)
        )
        queryset = queryset.filter(
            Q(name__icontains=word)
            | Q(sku__icontains=word)
            | Q(barcode__icontains=word)
            | Q(description__icontains=word)
            | Exists(variant_hit)
        )
    return queryset


# --- filters shared by the list and the facets ------------------------------------------


def with_option_values(
    queryset: QuerySet[Product], wanted: list[tuple[str, str]]
) -> QuerySet[Product]:
    """Products offering each option named: ``[("Size", "M"), ("Size", "L"), ("Colour",
    "Red")]`` is a variant in M or L, and a variant in Red (as the facets count them)."""
    by_option: dict[str, list[str]] = {}
    for name, value in wanted:
        by_option.setdefault(name, []).append(value)
    for name, values in by_option.items():
        if connection.vendor == "postgresql":
            # On the search row: [{"name", "value"}, ...] @> [{...}] (no variant read).
            offered = Q()
            for value in values:
                offered |= Q(search__option_values__contains=[{"name": name, "value": value}])
            queryset = queryset.filter(offered)
        else:
            queryset = queryset.filter(Exists(_variants_offering(name, values)))
    return queryset


def _variants_offering(name: str, values: list[str]) -> QuerySet[Product]:
    # The name as a JSON key, never as lookups ("Size__gt" is a name like any other).
    # Cast: a plain text comparison (a JSON key's own lookups expect JSON on SQLite).
    as_text = Cast(KeyTextTransform(name, "option_values"), TextField())
    return (
        Product.objects.filter(parent_id=OuterRef("pk"))
        .alias(option_value=as_text)
        .filter(option_value__in=values)
    )


def priced_between(
    queryset: QuerySet[Product], low: Decimal | None, high: Decimal | None
) -> QuerySet[Product]:
    """Products selling something priced from ``low`` to ``high`` (either may be None): a
    variant, or the product itself when it has none."""
    prices = Q()
    if low is not None:
        prices &= Q(price__gte=low)
    if high is not None:
        prices &= Q(price__lte=high)
    variants = Product.objects.filter(parent_id=OuterRef("pk"))
    return queryset.filter(
        Exists(variants.filter(prices)) | (~Exists(variants) & prices),
    )


def in_stock(queryset: QuerySet[Product], wanted: bool) -> QuerySet[Product]:
    """Products of which something is available (``wanted``), or nothing is."""
    condition = in_stock_condition()
    queryset = queryset.alias(**{STOCK_FILTERED: Value(True)})
    return queryset.filter(condition) if wanted else queryset.exclude(condition)


# --- facets ------------------------------------------------------------------------------


def product_facets(queryset: QuerySet[Product]) -> dict[str, Any]:
    """Return the counts of ``queryset`` (filtered products): by category, by option value
    (products offering it), the range of their prices and how many are in stock."""
    queryset = queryset.order_by()
    if queryset.query.is_empty():  # a search without a word: nothing to count
        totals: dict[str, Any] = {"count": 0, "in_stock": 0, "low": None, "high": None}
        categories: list[dict[str, Any]] = []
        options: Counter[tuple[str, str]] = Counter()
    elif connection.vendor == "postgresql":
        totals, categories, options = _indexed_facets(queryset)
    else:
        totals, options = _plain_totals_and_options(queryset)
        categories = _category_counts(queryset)
    categories.sort(key=lambda c: (-c["count"], c["id"] is None, c["id"] or 0))
    return {
        "count": totals["count"],
        "categories": categories,
        "options": _grouped(options),
        "price": {"min": totals["low"], "max": totals["high"]},
        "in_stock": totals["in_stock"],
    }


def _indexed_facets(
    queryset: QuerySet[Product],
) -> tuple[dict[str, Any], list[dict[str, Any]], Counter[tuple[str, str]]]:
    """Every count in one query: the products matched once (the search, the filters and
    whether each is in stock), then counted by category and by option value from their
    search rows."""
    matched = queryset.annotate(
        facet_in_stock=ExpressionWrapper(
            in_stock_condition(each_row=True), output_field=BooleanField()
        )
    ).values_list(
        "pk",
        "category_id",
        "facet_in_stock",
        "search__min_price",
        "search__max_price",
        "search__option_values",
    )
    products, params = matched.query.sql_with_params()
    # The products' query as Django compiled it, its values as parameters.
    columns = "id, category_id, in_stock, low, high, pairs"
    sql = f"WITH matched ({columns}) AS MATERIALIZED ({products}) " + (  # noqa: S608
        "SELECT 'total'::text, NULL::text, NULL::text, count(*), min(low), max(high), "
        "       count(*) FILTER (WHERE in_stock) "
        "  FROM matched "
        "UNION ALL "
        "SELECT 'category', m.category_id::text, c.name, count(*), NULL, NULL, NULL "
        "  FROM matched m LEFT JOIN catalog_category c "
        "    ON c.id = m.category_id AND c.is_active "  # an inactive one is not named
        " GROUP BY m.category_id, c.name "
        "UNION ALL "
        "SELECT 'option', pair->>'name', pair->>'value', count(*), NULL, NULL, NULL "
        "  FROM matched m CROSS JOIN LATERAL jsonb_array_elements(m.pairs) pair "
        " GROUP BY 2, 3"
    )
    totals: dict[str, Any] = {}
    categories: list[dict[str, Any]] = []
    options: Counter[tuple[str, str]] = Counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for kind, first, second, count, low, high, stocked in cursor.fetchall():
            if kind == "total":
                totals = {"count": count, "in_stock": stocked, "low": low, "high": high}
            elif kind == "category":
                pk = int(first) if first is not None else None
                categories.append({"id": pk, "name": second, "count": count})
            else:
                options[(first, second)] = count
    return totals, categories, options


def _category_counts(queryset: QuerySet[Product]) -> list[dict[str, Any]]:
    rows = list(queryset.values("category_id").annotate(count=Count("pk")).order_by())
    names = dict(
        Category.objects.filter(
            pk__in=[row["category_id"] for row in rows if row["category_id"] is not None],
            is_active=True,  # an inactive category is counted, not named
        ).values_list("pk", "name")
    )
    return [
        {"id": row["category_id"], "name": names.get(row["category_id"]), "count": row["count"]}
        for row in rows
    ]


def _plain_totals_and_options(
    queryset: QuerySet[Product],
) -> tuple[dict[str, Any], Counter[tuple[str, str]]]:
    """The totals and option counts without the search rows: read from the products and
    their variants (SQLite; any database runs it)."""
    totals = queryset.aggregate(
        count=Count("pk"), in_stock=Count("pk", filter=in_stock_condition(each_row=True))
    )
    variants = Product.objects.filter(parent__in=queryset.values("pk"))
    offered: dict[tuple[str, str], set[int]] = {}
    priced_by_variants: set[int] = set()
    prices: list[Decimal] = []
    for parent_id, price, values in variants.values_list("parent_id", "price", "option_values"):
        priced_by_variants.add(parent_id)
        prices.append(price)
        for pair in (values or {}).items():
            offered.setdefault(pair, set()).add(parent_id)
    for pk, price in queryset.values_list("pk", "price"):
        if pk not in priced_by_variants:
            prices.append(price)
    totals["low"] = min(prices) if prices else None
    totals["high"] = max(prices) if prices else None
    return totals, Counter({pair: len(ids) for pair, ids in offered.items()})


def _grouped(counts: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
    """``[{"name", "values": [{"value", "count"}, ...]}, ...]``: options by name, values
    most offered first."""
    options: dict[str, list[dict[str, Any]]] = {}
    for (name, value), count in sorted(counts.items(), key=lambda i: (i[0][0], -i[1], i[0][1])):
        options.setdefault(name, []).append({"value": value, "count": count})
    return [{"name": name, "values": values} for name, values in options.items()]
