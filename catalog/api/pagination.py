"""Pages of catalog lists, counted once per catalog version when the count is expensive."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

from catalog.cache import cached_count
from pms_backend.api.pagination import BoundedPageNumberPagination


class CatalogPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        return cached_count(self.object_list)


class CatalogPagination(BoundedPageNumberPagination):
    django_paginator_class = CatalogPaginator
