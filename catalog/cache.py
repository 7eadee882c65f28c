"""The storefront's cached catalog reads.

Every cached response is keyed by a catalog version; any committed catalog change
replaces the version, so stale pages are never served, only left to expire. When the
cache is down, reads go straight to the database.
"""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.core.cache import cache

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


def response_cache_key(version: str, audience: str, path: str, query: str) -> str:
    digest = hashlib.blake2b(f"{path}?{query}".encode(), digest_size=16).hexdigest()
    return f"catalog:resp:{version}:{audience}:{digest}"


def cached_response_get(key: str) -> tuple[bytes, str] | None:
    return cache.get(key)


def cached_response_set(key: str, body: bytes, etag: str) -> None:
    cache.set(key, (body, etag), settings.PMS_CATALOG_CACHE_SECONDS)
