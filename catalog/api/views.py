"""Products and categories over HTTP: thin views over catalog services and selectors."""

from __future__ import annotations

import hashlib
import json

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from audit.actors import Actor
from catalog import selectors, services
from catalog import variants as variant_services
from catalog.api.pagination import CatalogPagination
from catalog.api.serializers import (
    CategorySerializer,
    CategoryWriteSerializer,
    OptionSerializer,
    ProductListSerializer,
    ProductSerializer,
    ProductWriteSerializer,
    VariantGenerateSerializer,
    VariantSerializer,
    VariantWriteSerializer,
)
from catalog.availability import availability_of
from catalog.cache import (
    cached_response_get,
    cached_response_set,
    response_cache_key,
)
from catalog.filters import (
    MAX_OPTION_FILTERS,
    OPTION_VALUE_SCHEMA,
    CategoryFilter,
    ProductFilter,
    SearchOrderingFilter,
)
from catalog.models import Product
from catalog.payloads import (
    PRODUCT_LIST_COLUMNS,
    product_list_item,
    product_payload,
    variant_payload,
)
from catalog.search import product_facets
from pms_backend.api.filters import ordering_pattern
from pms_backend.api.permissions import principal_has_scope
from pms_backend.apikeys import scopes

PROBLEM = {"description": "problem+json error"}


class VariantListSerializer(serializers.Serializer):
    """A product's variants in the API's list shape (one page: at most 1,000)."""

    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = VariantSerializer(many=True)


PRODUCT_ORDERING = ["name", "price", "published_at", "created_at", "sku", "id"]


class CategoryCountSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    count = serializers.IntegerField()


class OptionValueCountSerializer(serializers.Serializer):
    value = serializers.CharField()
    count = serializers.IntegerField()


class OptionCountSerializer(serializers.Serializer):
    name = serializers.CharField()
    values = OptionValueCountSerializer(many=True)


class PriceRangeSerializer(serializers.Serializer):
    min = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    max = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)


class FacetsSerializer(serializers.Serializer):
    """What the products a list would show have, counted (the list's filters apply)."""

    count = serializers.IntegerField(help_text="Products matching.")
    categories = CategoryCountSerializer(many=True, help_text="Products per category.")
    options = OptionCountSerializer(
        many=True, help_text="Per option value, the products with a variant offering it."
    )
    price = PriceRangeSerializer(help_text="The lowest and highest price they sell at.")
    in_stock = serializers.IntegerField(help_text="Products with something available.")


# The filters of the product list (and its facets), as the schema shows them.
# A price filter as the filter takes it: at most 10 digits before the point, 2 after.
PRICE_SCHEMA = {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$"}
SEARCH_PARAMETERS = [
    OpenApiParameter(
        "search",
        str,
        description="Words matched in names (first), SKUs, barcodes and option values, "
        "then descriptions and attributes; the last word as a prefix; a name close to "
        "the search matches too (typos). Best first unless `ordering` is given. At most "
        "200 characters (400 beyond); without a letter or digit it matches nothing.",
    ),
    OpenApiParameter(
        "option",
        {"type": "array", "items": OPTION_VALUE_SCHEMA, "maxItems": MAX_OPTION_FILTERS},
        explode=True,
        description='"Name:Value", repeatable: products with a variant offering it '
        "(values of one option: any of them; several options: each offered).",
    ),
    OpenApiParameter(
        "price_min", PRICE_SCHEMA, description="Selling something at this price or more."
    ),
    OpenApiParameter(
        "price_max", PRICE_SCHEMA, description="Selling something at this price or less."
    ),
    OpenApiParameter(
        "in_stock", bool, description="true: something available now; false: nothing."
    ),
]


def _object_id(pk) -> int:
    """The id in a URL: digits, else no such object (404)."""
    if not (str(pk).isascii() and str(pk).isdigit()):
        raise NotFound()
    return int(pk)


def _fresh_availability(body: bytes) -> bytes:
    """Return a cached product answer with what is available of each variant now (the
    same object when nothing changed). Stock moves with every order and replaces no
    catalog version: without this a storefront would show a sold-out variant in stock
    until the answer expires. One query, by primary key."""
    data = json.loads(body)
    shown = data.get("variants") or []
    available = availability_of(v["id"] for v in shown)
    changed = False
    for variant in shown:
        if variant["available"] != available[variant["id"]]:
            variant["available"] = available[variant["id"]]
            variant["in_stock"] = variant["available"] > 0
            changed = True
    return JSONRenderer().render(data) if changed else body


def _etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


class StorefrontCachedReadMixin:
    """Serve storefront list/detail reads from the shared cache, keyed by catalog version.

    Staff and writers (who see drafts) always read through to the database.
    """

    def sees_everything(self) -> bool:
        raise NotImplementedError

    def cached(self, request, build, fresh=None) -> HttpResponse | Response:
        """``build()`` the answer, or serve it from the cache; ``fresh(body)``, if given,
        returns a cached body brought up to date (what the catalog version does not
        cover)."""
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
            if fresh is not None:
                updated = fresh(body)
                if updated is not body:
                    body, etag = updated, _etag_for(updated)
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
        description="Storefront keys see Published products only. Products, never their "
        "variants, and without their `variants` list: read a product for those.",
        parameters=[
            *SEARCH_PARAMETERS,
            OpenApiParameter(
                "ordering",
                {"type": "string", "pattern": ordering_pattern(PRODUCT_ORDERING)},
                description="name, price, published_at, created_at, sku or id, comma-separated;"
                " prefix - to reverse. Anything else is a 400 naming these.",
            ),
        ],
    ),
    retrieve=extend_schema(
        summary="Get a product",
        description="With its `variants` and what is available of each (summed over the "
        "active locations). A product without variants lists itself as its one variant.",
        responses={200: ProductSerializer, 404: PROBLEM},
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
    filter_backends = [*viewsets.GenericViewSet.filter_backends, SearchOrderingFilter]
    ordering_fields = PRODUCT_ORDERING
    ordering = ["name", "id"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    required_scopes = {
        "list": scopes.CATALOG_READ,
        "retrieve": scopes.CATALOG_READ,
        "facets": scopes.CATALOG_READ,
        "create": scopes.CATALOG_WRITE,
        "partial_update": scopes.CATALOG_WRITE,
        "publish": scopes.CATALOG_WRITE,
        "unpublish": scopes.CATALOG_WRITE,
        "archive": scopes.CATALOG_WRITE,
        "restore": scopes.CATALOG_WRITE,
        "set_options": scopes.CATALOG_WRITE,
        "variants": scopes.CATALOG_READ,
        "create_variant": scopes.CATALOG_WRITE,
        "generate_variants": scopes.CATALOG_WRITE,
    }
    # Staff sessions: the admin's permission for the same thing where the scope's differs
    # (a variant is a product row: making one is adding a product).
    staff_permissions = {
        "create": ("catalog.add_product",),
        "create_variant": ("catalog.add_product",),
        "generate_variants": ("catalog.add_product",),
    }

    def sees_everything(self) -> bool:
        return principal_has_scope(self.request, scopes.CATALOG_WRITE)

    def get_queryset(self):
        return selectors.product_list(include_unpublished=self.sees_everything())

    def get_serializer_class(self):
        return ProductListSerializer if self.action == "list" else ProductSerializer

    def list(self, request, *args, **kwargs):
        def build():
            # The page's columns, shown as ProductListSerializer would (product_list_item).
            queryset = self.filter_queryset(self.get_queryset()).values(*PRODUCT_LIST_COLUMNS)
            page = self.paginate_queryset(queryset)
            if page is None:
                return Response([product_list_item(row) for row in queryset])
            return self.get_paginated_response([product_list_item(row) for row in page])

        # Stock moves with every order and replaces no catalog version: a list filtered
        # by it is read afresh.
        if "in_stock" in request.query_params:
            return build()
        return self.cached(request, build)

    @extend_schema(
        summary="Count products by category, option value, price and stock",
        description="The facets of the product list for the same filters (`search`, "
        "`category`, `option`, `price_min`, `price_max`, `in_stock`): how many products "
        "match, per category, per option value, their price range and how many are in "
        "stock. Storefront keys count Published products only. Read afresh on every "
        "request (stock counts change with every order).",
        parameters=[
            *SEARCH_PARAMETERS,
            OpenApiParameter(
                "category", {"type": "integer", "minimum": 1}, description="A category id."
            ),
            OpenApiParameter(
                "status",
                str,
                enum=[value for value, _ in Product.Status.choices],
                description="Keys with catalog:write and staff: products of this status.",
            ),
        ],
        responses={200: FacetsSerializer, 400: PROBLEM},
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def facets(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        return Response(FacetsSerializer(product_facets(queryset)).data)

    def retrieve(self, request, *args, **kwargs):
        return self.cached(
            request,
            lambda: Response(product_payload(self.get_object())),
            fresh=_fresh_availability,
        )

    def create(self, request):
        serializer = ProductWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(
            actor=Actor.from_request(request), **serializer.validated_data
        )
        return Response(product_payload(product), status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        product = self.get_object()
        serializer = ProductWriteSerializer(product, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        product = services.product_update(
            actor=Actor.from_request(request),
            product_id=product.pk,
            data=dict(serializer.validated_data),
        )
        return Response(product_payload(product))

    def _transition(self, request, name: str) -> Response:
        product = self.get_object()
        product = services.product_transition(
            actor=Actor.from_request(request), product_id=product.pk, transition=name
        )
        return Response(product_payload(product))

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

    @extend_schema(
        summary="Declare a product's options",
        description="The body is the whole list (at most 3 options, 1 to 100 values each). "
        "Adding options or values and reordering are free; removing one a variant uses is "
        "refused (409 `option_in_use`).",
        request=OptionSerializer(many=True),
        responses={200: ProductSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    @action(detail=True, methods=["put"], url_path="options", filter_backends=[])
    def set_options(self, request, pk=None):
        product = variant_services.product_set_options(
            actor=Actor.from_request(request), product_id=_object_id(pk), options=request.data
        )
        return Response(product_payload(product))

    @extend_schema(
        summary="List a product's variants",
        description="In making order, with what is available of each; a product without "
        "variants lists itself. Storefront keys: Published products only.",
        responses={200: VariantListSerializer, 404: PROBLEM},
    )
    # One product's variants: the product list's filters (search, category, ordering) do
    # not apply, and the schema does not offer them.
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def variants(self, request, pk=None):
        # The API's list shape, on one page: a product has at most 1,000 variants.
        found = product_payload(self.get_object())["variants"]
        return Response({"count": len(found), "next": None, "previous": None, "results": found})

    @extend_schema(
        summary="Add a variant",
        description="`options` names one declared value of every option; `price` defaults to "
        "the product's. Its status is the product's.",
        request=VariantWriteSerializer,
        responses={201: VariantSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    @variants.mapping.post
    def create_variant(self, request, pk=None):
        serializer = VariantWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        variant = variant_services.variant_create(
            actor=Actor.from_request(request),
            product_id=_object_id(pk),
            **serializer.validated_data,
        )
        return Response(variant_payload(variant, available=0), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Make a product's variants from its options",
        description="Every combination of the options, or the `combinations` given; those "
        "the product has already are left alone. SKUs are `<product SKU>-<VALUE>-<VALUE>`, "
        "prices the product's. Returns the variants made.",
        request=VariantGenerateSerializer,
        responses={201: VariantSerializer(many=True), 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="variants/generate",
        pagination_class=None,
        filter_backends=[],
    )
    def generate_variants(self, request, pk=None):
        serializer = VariantGenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        made = variant_services.variants_generate(
            actor=Actor.from_request(request),
            product_id=_object_id(pk),
            combinations=serializer.validated_data.get("combinations"),
        )
        return Response(
            [variant_payload(v, available=0) for v in made], status=status.HTTP_201_CREATED
        )


@extend_schema_view(
    retrieve=extend_schema(
        summary="Get a variant",
        description="Storefront keys: variants of Published products only.",
        responses={200: VariantSerializer, 404: PROBLEM},
    ),
    partial_update=extend_schema(
        summary="Change a variant",
        description="SKU, barcode, price, options (another free combination), weight or "
        "stock tracking. Its status follows its product's.",
        request=VariantWriteSerializer,
        responses={200: VariantSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    ),
    destroy=extend_schema(
        summary="Delete a variant",
        description="Refused (409 `variant_in_use`) once it has stock, ledger lines or orders.",
        responses={204: None, 404: PROBLEM, 409: PROBLEM},
    ),
)
class VariantViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = VariantSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]
    lookup_value_regex = "[0-9]+"
    required_scopes = {
        "retrieve": scopes.CATALOG_READ,
        "partial_update": scopes.CATALOG_WRITE,
        "destroy": scopes.CATALOG_WRITE,
    }
    staff_permissions = {"destroy": ("catalog.delete_product",)}

    def get_queryset(self):
        return selectors.variant_list(
            include_unpublished=principal_has_scope(self.request, scopes.CATALOG_WRITE)
        )

    def retrieve(self, request, *args, **kwargs):
        return Response(variant_payload(self.get_object()))

    def partial_update(self, request, pk=None):
        serializer = VariantWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        variant = variant_services.variant_update(
            actor=Actor.from_request(request),
            variant_id=_object_id(pk),
            data=dict(serializer.validated_data),
        )
        return Response(variant_payload(variant))

    def destroy(self, request, pk=None):
        variant_services.variant_delete(
            actor=Actor.from_request(request), variant_id=_object_id(pk)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


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
