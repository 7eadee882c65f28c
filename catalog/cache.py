"""The storefront's cached catalog reads.

Every cached response carries the catalog version it was built at; any committed catalog
change replaces the version, so a response of an older version is never served, only
replaced or left to expire. When the cache is down, reads go straight to the database.
"""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connections

VERSION_KEY = "catalog:version"


def catalog_cache_version() -> str | None:
    """Return the current catalog version, or None when the cache is unreachable."""
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(VERSION_KEY)
    return version


def catalog_cache_bump() -> None:
    """Invalidate every cached catalog response (call after commit)."""
    cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)


def response_cache_key(audience: str, path: str, query: str) -> str:
    digest = hashlib.blake2b(f"{path}?{query}".encode(), digest_size=16).hexdigest()
    return f"catalog:resp:{audience}:{digest}"


def cached_response_get(key: str) -> tuple[str | None, tuple[bytes, str] | None]:
    """Return the catalog version and, if built at that version, the response under ``key``.

    One cache round trip reads both. The version is None when the cache is unreachable.
    """
    found = cache.get_many([VERSION_KEY, key])
    version = found.get(VERSION_KEY)
    if version is None:
        return catalog_cache_version(), None
    entry = found.get(key)
    if entry is not None and entry[0] == version:
        return version, (entry[1], entry[2])
    return version, None


def cached_response_set(key: str, version: str, body: bytes, etag: str) -> None:
    cache.set(key, (version, body, etag), settings.PMS_CATALOG_CACHE_SECONDS)


# A count at least this large is worth remembering: below it, COUNT(*) costs about as
# much as the cache round trip, and small lists (tests, young shops) always count afresh.
COUNT_CACHE_MIN_ROWS = 5_000
# Lists whose last count was small, by query: this process counts them without asking the
# cache first. Only a shortcut (whatever is counted is exact), so it may be forgotten.
_counted_small: set[str] = set()
_COUNTED_SMALL_MAX = 10_000


def cached_count(queryset, *, min_rows: int | None = None) -> int:
    """Return ``queryset.count()``, remembered per catalog version when it is large
    (``min_rows`` or more, by default ``COUNT_CACHE_MIN_ROWS``; 0: always, for counts
    that cost as much as their page).

    A list's COUNT(*) visits every matching row, so on a big catalog it costs more than
    the page itself. Any committed catalog change replaces the version, so a remembered
    count is as fresh as the storefront's cached pages; without a cache it is counted.
    """
    # Compiled once, without its ordering (which no count needs): the key and the count
    # share it (Django's count() would compile the query a second time, a tenth of an
    # uncached page's CPU), and one list in any order has one remembered count.
    try:
        sql, params = queryset.order_by().query.get_compiler(using=queryset.db).as_sql()
    except EmptyResultSet:  # a query that can match nothing (queryset.none()) has no SQL
        return 0
    if min_rows is None:
        min_rows = COUNT_CACHE_MIN_ROWS
    digest = hashlib.blake2b(repr((sql, params)).encode(), digest_size=16).hexdigest()
    key = f"catalog:count:{digest}"
    if min_rows == 0 or digest not in _counted_small:
        # One round trip for the version and the remembered count.
        found = cache.get_many([VERSION_KEY, key])
        remembered = found.get(key)
        if remembered is not None and remembered[0] == found.get(VERSION_KEY):
            return remembered[1]
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) AS counted", params)  # noqa: S608
        count = cursor.fetchone()[0]
    if count < min_rows:
        if len(_counted_small) >= _COUNTED_SMALL_MAX:
            _counted_small.clear()
        _counted_small.add(digest)
        return count
    _counted_small.discard(digest)
    version = catalog_cache_version()
    if version is not None:
        cache.set(key, (version, count), settings.PMS_CATALOG_CACHE_SECONDS)
    return count
