"""Pages of catalog lists, counted once per catalog version when the count is expensive."""

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

from catalog.cache import cached_count
from catalog.search import SEARCH_RANK, STOCK_FILTERED
from pms_backend.api.pagination import BoundedPageNumberPagination


class CatalogPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        queryset: QuerySet = self.object_list  # type: ignore[assignment]
        annotations = queryset.query.annotations
        # Stock moves with every order and replaces no catalog version: counted afresh.
        if STOCK_FILTERED in annotations:
            return queryset.count()
        # A search's count matches and joins as much as its page, however few it finds:
        # remembered whatever its size (a plain list's small counts are cheap).
        if SEARCH_RANK in annotations:
            return cached_count(queryset, min_rows=0)
        return cached_count(queryset)


class CatalogPagination(BoundedPageNumberPagination):
    django_paginator_class = CatalogPaginator
