"""Stock status (of a product, of several) and the movement ledger over HTTP."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.actors import Actor
from catalog import selectors as catalog_selectors
from inventory import selectors, services
from inventory.api.serializers import MovementCreateSerializer, MovementSerializer, StockSerializer
from inventory.filters import MovementFilter
from inventory.models import Stock
from pms_backend.api.permissions import principal_has_scope
from pms_backend.apikeys import scopes

MAX_BATCH = 100
PROBLEM = {"description": "problem+json error"}


class ProductStockViewSet(viewsets.GenericViewSet):
    """A product's stock, at ``products/{id}/stock/`` beside the catalog's product URLs."""

    required_scopes = {"stock": scopes.INVENTORY_READ}

    def get_queryset(self):
        # The products the caller may see, as the catalog's product endpoints show them.
        return catalog_selectors.product_list(
            include_unpublished=principal_has_scope(self.request, scopes.CATALOG_WRITE)
        )

    @extend_schema(
        summary="Stock status of a product", responses={200: StockSerializer, 404: PROBLEM}
    )
    @action(detail=True, methods=["get"])
    def stock(self, request, pk=None):
        """On hand, reserved, available and whether it is in stock."""
        # One query for the product's visibility and its stock row (a product without one
        # shows zeros), instead of loading the whole product and then its stock.
        pid, on_hand, reserved = get_object_or_404(
            self.get_queryset().values_list("pk", "stock__on_hand", "stock__reserved"), pk=pk
        )
        return Response(
            services.stock_representation(
                Stock(product_id=pid, on_hand=on_hand or 0, reserved=reserved or 0)
            )
        )


class StockBatchView(APIView):
    """Stock of several products at once: ``?products=1,2,3`` (at most 100)."""

    required_scopes = {"GET": scopes.INVENTORY_READ}

    @extend_schema(
        summary="Stock status of several products",
        parameters=[
            OpenApiParameter(
                "products",
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1},
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                },
                required=True,
                style="form",
                explode=False,
                description=f"Product ids, comma-separated (1 to {MAX_BATCH}).",
            )
        ],
        responses={200: StockSerializer(many=True), 400: PROBLEM},
    )
    def get(self, request):
        raw = request.query_params.get("products", "")
        try:
            ids = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            ids = None
        if not ids or any(i < 1 for i in ids) or len(ids) > MAX_BATCH:
            raise ValidationError(
                {"products": [f"Give 1 to {MAX_BATCH} comma-separated product ids."]}
            )
        visible = catalog_selectors.product_list(
            include_unpublished=principal_has_scope(request, scopes.CATALOG_WRITE)
        ).filter(pk__in=ids)
        stock = selectors.stock_for(visible.values_list("pk", flat=True))
        return Response([stock[pid] for pid in sorted(stock)])


@extend_schema_view(
    list=extend_schema(summary="Read the stock ledger"),
    retrieve=extend_schema(summary="Read one movement"),
    create=extend_schema(
        summary="Record a receipt, adjustment, correction or return",
        request=MovementCreateSerializer,
        responses={201: MovementSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    ),
)
class MovementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = MovementSerializer
    filterset_class = MovementFilter
    required_scopes = {
        "list": scopes.INVENTORY_WRITE,
        "retrieve": scopes.INVENTORY_WRITE,
        "create": scopes.INVENTORY_WRITE,
    }
    # Staff sessions read the ledger with the admin's view permission.
    staff_permissions = {
        "list": ("inventory.view_inventorymovement",),
        "retrieve": ("inventory.view_inventorymovement",),
    }

    def get_queryset(self):
        return selectors.movement_list()

    def create(self, request):
        serializer = MovementCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        movement = services.stock_record_movement(
            actor=Actor.from_request(request),
            product_id=data["product"].pk,
            kind=data["kind"],
            quantity=data["quantity"],
            reason=data["reason"],
        )
        return Response(MovementSerializer(movement).data, status=status.HTTP_201_CREATED)
