"""Products and categories over HTTP: thin views over catalog services and selectors."""

from __future__ import annotations

import hashlib

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import filters, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from audit.actors import Actor
from catalog import selectors, services
from catalog.api.pagination import CatalogPagination
from catalog.api.serializers import (
    CategorySerializer,
    CategoryWriteSerializer,
    ProductSerializer,
    ProductWriteSerializer,
)
from catalog.cache import (
    cached_response_get,
    cached_response_set,
    response_cache_key,
)
from catalog.filters import CategoryFilter, ProductFilter
from pms_backend.api.filters import StrictOrderingFilter, ordering_pattern
from pms_backend.api.permissions import principal_has_scope
from pms_backend.apikeys import scopes

PROBLEM = {"description": "problem+json error"}
PRODUCT_ORDERING = ["name", "price", "published_at", "created_at", "sku", "id"]


def _etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


class StorefrontCachedReadMixin:
    """Serve storefront list/detail reads from the shared cache, keyed by catalog version.

    Staff and writers (who see drafts) always read through to the database.
    """

    def sees_everything(self) -> bool:
        raise NotImplementedError

    def cached(self, request, build) -> HttpResponse | Response:
        if self.sees_everything():
            return build()
        # Pages carry absolute links (next, previous), so scheme and host are part of the key.
        key = response_cache_key(
            "storefront",
            request.build_absolute_uri(request.path),
            request.META.get("QUERY_STRING", ""),
        )
        version, hit = cached_response_get(key)
        if version is None:
            return build()
        if hit is not None:
            body, etag = hit
            response = HttpResponse(body, content_type="application/json")
            response["ETag"] = etag
            response["X-Cache"] = "hit"
            return response
        response = build()
        if response.status_code == 200:
            body = JSONRenderer().render(response.data)
            etag = _etag_for(body)
            cached_response_set(key, version, body, etag)
            response = HttpResponse(body, content_type="application/json")
            response["ETag"] = etag
            response["X-Cache"] = "miss"
        return response


@extend_schema_view(
    list=extend_schema(
        summary="List products",
        description="Storefront keys see Published products only.",
        parameters=[
            OpenApiParameter("search", str, description="Matches SKU or name."),
            OpenApiParameter(
                "ordering",
                {"type": "string", "pattern": ordering_pattern(PRODUCT_ORDERING)},
                description="name, price, published_at, created_at, sku or id, comma-separated;"
                " prefix - to reverse. Anything else is a 400 naming these.",
            ),
        ],
    ),
    retrieve=extend_schema(
        summary="Get a product", responses={200: ProductSerializer, 404: PROBLEM}
    ),
    create=extend_schema(
        summary="Create a draft product",
        request=ProductWriteSerializer,
        responses={201: ProductSerializer, 400: PROBLEM, 409: PROBLEM},
    ),
    partial_update=extend_schema(
        summary="Change a product",
        request=ProductWriteSerializer,
        responses={200: ProductSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    ),
)
class ProductViewSet(
    StorefrontCachedReadMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ProductSerializer
    pagination_class = CatalogPagination
    filterset_class = ProductFilter
    filter_backends = [
        *viewsets.GenericViewSet.filter_backends,
        filters.SearchFilter,
        StrictOrderingFilter,
    ]
    search_fields = ["sku", "name"]
    ordering_fields = PRODUCT_ORDERING
    ordering = ["name", "id"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    required_scopes = {
        "list": scopes.CATALOG_READ,
        "retrieve": scopes.CATALOG_READ,
        "create": scopes.CATALOG_WRITE,
        "partial_update": scopes.CATALOG_WRITE,
        "publish": scopes.CATALOG_WRITE,
        "unpublish": scopes.CATALOG_WRITE,
        "archive": scopes.CATALOG_WRITE,
        "restore": scopes.CATALOG_WRITE,
    }
    # Staff sessions: the admin's permission for the same thing where the scope's differs.
    staff_permissions = {"create": ("catalog.add_product",)}

    def sees_everything(self) -> bool:
        return principal_has_scope(self.request, scopes.CATALOG_WRITE)

    def get_queryset(self):
        return selectors.product_list(include_unpublished=self.sees_everything())

    def list(self, request, *args, **kwargs):
        return self.cached(
            request, lambda: super(ProductViewSet, self).list(request, *args, **kwargs)
        )

    def retrieve(self, request, *args, **kwargs):
        return self.cached(
            request, lambda: super(ProductViewSet, self).retrieve(request, *args, **kwargs)
        )

    def create(self, request):
        serializer = ProductWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(
            actor=Actor.from_request(request), **serializer.validated_data
        )
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        product = self.get_object()
        serializer = ProductWriteSerializer(product, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        product = services.product_update(
            actor=Actor.from_request(request),
            product_id=product.pk,
            data=dict(serializer.validated_data),
        )
        return Response(ProductSerializer(product).data)

    def _transition(self, request, name: str) -> Response:
        product = self.get_object()
        product = services.product_transition(
            actor=Actor.from_request(request), product_id=product.pk, transition=name
        )
        return Response(ProductSerializer(product).data)

    _transition_schema = extend_schema(
        request=None, responses={200: ProductSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM}
    )

    @_transition_schema
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        """Draft → Published (needs a name, a price above zero and an active category)."""
        return self._transition(request, "publish")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def unpublish(self, request, pk=None):
        """Published → Draft."""
        return self._transition(request, "unpublish")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        """Published → Archived."""
        return self._transition(request, "archive")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        """Archived → Draft."""
        return self._transition(request, "restore")


@extend_schema_view(
    list=extend_schema(summary="List categories"),
    retrieve=extend_schema(
        summary="Get a category", responses={200: CategorySerializer, 404: PROBLEM}
    ),
    create=extend_schema(
        summary="Create a category",
        request=CategoryWriteSerializer,
        responses={201: CategorySerializer, 400: PROBLEM, 409: PROBLEM},
    ),
    partial_update=extend_schema(
        summary="Change a category",
        request=CategoryWriteSerializer,
        responses={200: CategorySerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    ),
    destroy=extend_schema(
        summary="Delete an empty category", responses={204: None, 404: PROBLEM, 409: PROBLEM}
    ),
)
class CategoryViewSet(
    StorefrontCachedReadMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CategorySerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_class = CategoryFilter
    required_scopes = {
        "list": scopes.CATALOG_READ,
        "retrieve": scopes.CATALOG_READ,
        "create": scopes.CATALOG_WRITE,
        "partial_update": scopes.CATALOG_WRITE,
        "destroy": scopes.CATALOG_WRITE,
    }
    staff_permissions = {
        "list": ("catalog.view_category",),
        "retrieve": ("catalog.view_category",),
        "create": ("catalog.add_category",),
        "partial_update": ("catalog.change_category",),
        "destroy": ("catalog.delete_category",),
    }

    def sees_everything(self) -> bool:
        return principal_has_scope(self.request, scopes.CATALOG_WRITE)

    def get_queryset(self):
        return selectors.category_list(include_inactive=self.sees_everything())

    def list(self, request, *args, **kwargs):
        return self.cached(
            request, lambda: super(CategoryViewSet, self).list(request, *args, **kwargs)
        )

    def retrieve(self, request, *args, **kwargs):
        return self.cached(
            request, lambda: super(CategoryViewSet, self).retrieve(request, *args, **kwargs)
        )

    def create(self, request):
        serializer = CategoryWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        category = services.category_create(
            actor=Actor.from_request(request), **serializer.validated_data
        )
        return Response(self._read(category.pk), status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        category = self.get_object()
        serializer = CategoryWriteSerializer(category, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.category_update(
            actor=Actor.from_request(request),
            category_id=category.pk,
            data=dict(serializer.validated_data),
        )
        return Response(self._read(category.pk))

    def destroy(self, request, pk=None):
        category = self.get_object()
        services.category_delete(actor=Actor.from_request(request), category_id=category.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _read(self, pk: int) -> dict:
        category = selectors.category_list(include_inactive=True).filter(pk=pk).first()
        if category is None:
            raise NotFound()
        return CategorySerializer(category).data
