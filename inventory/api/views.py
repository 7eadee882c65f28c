"""Stock status (of a product, of several), stock locations, the movement ledger and
transfers between locations over HTTP."""

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
from inventory import locations, selectors, services, transfers
from inventory.api.serializers import (
    LocationSerializer,
    LocationWithStockSerializer,
    LocationWriteSerializer,
    MovementCreateSerializer,
    MovementSerializer,
    StockByLocationSerializer,
    StocktakeResultSerializer,
    StocktakeSerializer,
    TransferCreateSerializer,
    TransferReceiveSerializer,
    TransferSerializer,
)
from inventory.filters import MovementFilter, TransferFilter
from inventory.models import InventoryMovement, Stock
from inventory.stocktake import stock_set_levels
from pms_backend.api.filters import MAX_ID
from pms_backend.api.permissions import principal_has_scope
from pms_backend.apikeys import scopes
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.scopes import staff_has_permissions

MAX_BATCH = 100
PROBLEM = {"description": "problem+json error"}
LEDGER_READ_PERMISSIONS = ("inventory.view_inventorymovement",)


def reads_stock_by_location(request) -> bool:
    """Return whether the caller may see what each location holds: whoever may read the
    ledger (``inventory:write``, or a staff session with the ledger's view permission),
    whose movements show it anyway. ``inventory:read`` alone (a storefront key) sees
    the totals over the active locations only."""
    if isinstance(request.auth, ApiKey):
        return request.auth.has_scope(scopes.INVENTORY_WRITE)
    return staff_has_permissions(request.user, LEDGER_READ_PERMISSIONS)


class ProductStockViewSet(viewsets.GenericViewSet):
    """A product's stock, at ``products/{id}/stock/`` beside the catalog's product URLs."""

    required_scopes = {"stock": scopes.INVENTORY_READ}

    def get_queryset(self):
        # The products and variants the caller may see, as the catalog shows them.
        return catalog_selectors.sellable_list(
            include_unpublished=principal_has_scope(self.request, scopes.CATALOG_WRITE)
        )

    @extend_schema(
        summary="Stock status of a product or variant",
        description="A variant's (or a single product's) own stock; a product with variants "
        "the sum of theirs. Callers who may read the ledger also get `locations`: each "
        "active location's `on_hand`, `reserved` and `available`.",
        responses={200: StockByLocationSerializer, 404: PROBLEM},
    )
    @action(detail=True, methods=["get"])
    def stock(self, request, pk=None):
        """On hand, reserved, available and whether it is in stock."""
        # One query for the product's visibility and its stock row (a product without one
        # shows zeros), instead of loading the whole product and then its stock.
        pid, on_hand, reserved, backordered = get_object_or_404(
            self.get_queryset().values_list(
                "pk", "stock__on_hand", "stock__reserved", "stock__backordered"
            ),
            pk=pk,
        )
        if on_hand is None or on_hand == reserved == backordered == 0:
            # No stock of its own: never stocked, or a product that sells through variants
            # (the sum of theirs; it may keep a zero row from before it had them).
            body = selectors.stock_for([pid])[pid]
        else:
            body = services.stock_representation(
                Stock(product_id=pid, on_hand=on_hand, reserved=reserved, backordered=backordered)
            )
        if reads_stock_by_location(request):
            body["locations"] = selectors.stock_by_location([pid])[pid]
        return Response(body)


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
                    "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                },
                required=True,
                style="form",
                explode=False,
                description=f"Product ids, comma-separated (1 to {MAX_BATCH}).",
            )
        ],
        description="Callers who may read the ledger also get each product's `locations`.",
        responses={200: StockByLocationSerializer(many=True), 400: PROBLEM},
    )
    def get(self, request):
        raw = request.query_params.get("products", "")
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        # Digits only (int() would take "+5" and "1_0"), each an id in the key range.
        ids = [int(p) for p in parts if p.isascii() and p.isdigit() and len(p) <= 19]
        if len(ids) != len(parts) or not 1 <= len(ids) <= MAX_BATCH:
            ids = []
        if not ids or min(ids) < 1 or max(ids) > MAX_ID:
            raise ValidationError(
                {"products": [f"Give 1 to {MAX_BATCH} comma-separated product ids."]}
            )
        visible = catalog_selectors.sellable_list(
            include_unpublished=principal_has_scope(request, scopes.CATALOG_WRITE)
        ).filter(pk__in=ids)
        stock = selectors.stock_for(visible.values_list("pk", flat=True))
        if reads_stock_by_location(request):
            where = selectors.stock_by_location(stock)
            for pid, row in stock.items():
                row["locations"] = where[pid]
        return Response([stock[pid] for pid in sorted(stock)])


@extend_schema_view(
    list=extend_schema(
        summary="Read the stock ledger",
        parameters=[OpenApiParameter("location", str, description="A location code.")],
    ),
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
            location=data.get("location"),
        )
        movement = selectors.movement_list().get(pk=movement.pk)
        return Response(MovementSerializer(movement).data, status=status.HTTP_201_CREATED)


LOCATION_CODE = "[A-Za-z0-9][A-Za-z0-9_-]*"


@extend_schema_view(
    list=extend_schema(
        summary="List stock locations",
        description="By priority. Callers who may read the ledger also get each location's "
        "`on_hand` and `reserved` sums.",
        responses={200: LocationWithStockSerializer(many=True)},
    ),
    retrieve=extend_schema(
        summary="Get a stock location", responses={200: LocationWithStockSerializer, 404: PROBLEM}
    ),
    create=extend_schema(
        summary="Add a stock location",
        request=LocationWriteSerializer,
        responses={201: LocationWithStockSerializer, 400: PROBLEM, 409: PROBLEM},
    ),
    partial_update=extend_schema(
        summary="Change a stock location",
        request=LocationWriteSerializer,
        responses={200: LocationWithStockSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    ),
    destroy=extend_schema(
        summary="Delete a stock location",
        description="409 `location_holds_stock` while it holds stock, `location_in_use` once "
        "the ledger or an order names it (deactivate it instead), `last_active_location`.",
        responses={204: None, 404: PROBLEM, 409: PROBLEM},
    ),
)
class LocationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Warehouses and stores, by their code."""

    lookup_field = "code"
    lookup_value_regex = LOCATION_CODE
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_scopes = {
        "list": scopes.INVENTORY_READ,
        "retrieve": scopes.INVENTORY_READ,
        "create": scopes.INVENTORY_WRITE,
        "partial_update": scopes.INVENTORY_WRITE,
        "destroy": scopes.INVENTORY_WRITE,
        "stocktake": scopes.INVENTORY_WRITE,
    }
    # Staff sessions change locations with the admin's location permissions.
    staff_permissions = {
        "create": ("inventory.add_location",),
        "partial_update": ("inventory.change_location",),
        "destroy": ("inventory.delete_location",),
    }

    def with_stock(self) -> bool:
        return reads_stock_by_location(self.request)

    def get_queryset(self):
        return selectors.location_list(with_stock=self.with_stock())

    def get_serializer_class(self):
        return LocationWithStockSerializer if self.with_stock() else LocationSerializer

    def create(self, request):
        serializer = LocationWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        location = locations.location_create(
            actor=Actor.from_request(request), **serializer.validated_data
        )
        return Response(self._read(location.code), status=status.HTTP_201_CREATED)

    def partial_update(self, request, code=None):
        serializer = LocationWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        location = locations.location_update(
            actor=Actor.from_request(request), code=code, data=dict(serializer.validated_data)
        )
        return Response(self._read(location.code))

    def destroy(self, request, code=None):
        locations.location_delete(actor=Actor.from_request(request), code=code)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Post a stocktake of a location",
        description="`counts` is what was counted, product by product; each product whose "
        "level at the location differs gets a `correction` movement with the reason. 409 "
        "`insufficient_stock` (every offending product in `lines`) when a count is below "
        "what open orders have reserved there: nothing is posted.",
        request=StocktakeSerializer,
        responses={200: StocktakeResultSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    @action(detail=True, methods=["post"])
    def stocktake(self, request, code=None):
        serializer = StocktakeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        moved = stock_set_levels(
            actor=Actor.from_request(request),
            targets={line["product"]: line["on_hand"] for line in data["counts"]},
            kind=InventoryMovement.Kind.CORRECTION,
            reason=data["reason"],
            reference=f"stocktake:{code}"[:64],
            location=code,
        )
        return Response({"location": code, "counted": len(data["counts"]), "movements": moved})

    def _read(self, code: str) -> dict:
        location = selectors.location_list(with_stock=self.with_stock()).get(code=code)
        return self.get_serializer_class()(location).data


TRANSFER_NUMBER = OpenApiParameter(
    "number",
    {"type": "string", "pattern": "^TR-[0-9A-Za-z]{1,16}$"},
    OpenApiParameter.PATH,
    description='The transfer\'s number, "TR-…".',
)


@extend_schema_view(
    list=extend_schema(summary="List transfers between locations, newest first"),
    retrieve=extend_schema(
        summary="Get a transfer",
        parameters=[TRANSFER_NUMBER],
        responses={200: TransferSerializer, 404: PROBLEM},
    ),
)
class TransferViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stock transfers between locations: Draft → In transit → Received (or Cancelled).

    Read and written with inventory:write, as the ledger: a transfer shows quantities per
    location, which storefront keys (inventory:read) never see.
    """

    serializer_class = TransferSerializer
    filterset_class = TransferFilter
    lookup_field = "number"
    lookup_value_regex = r"TR-[0-9A-Za-z]{1,16}"  # a transfer's number; else 404
    required_scopes = {
        "list": scopes.INVENTORY_WRITE,
        "retrieve": scopes.INVENTORY_WRITE,
        "create": scopes.INVENTORY_WRITE,
        "dispatch_transfer": scopes.INVENTORY_WRITE,
        "receive": scopes.INVENTORY_WRITE,
        "cancel": scopes.INVENTORY_WRITE,
    }
    # Staff sessions read transfers with the admin's view permission.
    staff_permissions = {
        "list": ("inventory.view_transfer",),
        "retrieve": ("inventory.view_transfer",),
        "create": ("inventory.add_transfer",),
        "dispatch_transfer": ("inventory.change_transfer",),
        "receive": ("inventory.change_transfer",),
        "cancel": ("inventory.change_transfer",),
    }

    def get_queryset(self):
        return selectors.transfer_list()

    def _answer(self, transfer, code=status.HTTP_200_OK) -> Response:
        return Response(TransferSerializer(transfer).data, status=code)

    @extend_schema(
        summary="Draft a transfer",
        request=TransferCreateSerializer,
        responses={201: TransferSerializer, 400: PROBLEM, 409: PROBLEM},
    )
    def create(self, request):
        serializer = TransferCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        transfer = transfers.transfer_create(
            actor=Actor.from_request(request),
            from_location=data["from_location"],
            to_location=data["to_location"],
            lines=data["lines"],
            note=data["note"],
        )
        return self._answer(transfer, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Dispatch a draft transfer: its goods leave the source location",
        parameters=[TRANSFER_NUMBER],
        request=None,
        responses={200: TransferSerializer, 404: PROBLEM, 409: PROBLEM},
    )
    # Not "dispatch": that is the method every DRF view answers requests with.
    @action(detail=True, methods=["post"], url_path="dispatch", url_name="dispatch")
    def dispatch_transfer(self, request, number=None):
        transfer = transfers.transfer_dispatch(actor=Actor.from_request(request), transfer=number)
        return self._answer(transfer)

    @extend_schema(
        summary="Receive a transfer in transit, all of it or some lines",
        parameters=[TRANSFER_NUMBER],
        request=TransferReceiveSerializer,
        responses={200: TransferSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    @action(detail=True, methods=["post"])
    def receive(self, request, number=None):
        serializer = TransferReceiveSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        transfer = transfers.transfer_receive(
            actor=Actor.from_request(request),
            transfer=number,
            lines=serializer.validated_data.get("lines"),
        )
        return self._answer(transfer)

    @extend_schema(
        summary="Cancel a transfer; what is on the way goes back to the source",
        parameters=[TRANSFER_NUMBER],
        request=None,
        responses={200: TransferSerializer, 404: PROBLEM, 409: PROBLEM},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, number=None):
        transfer = transfers.transfer_cancel(actor=Actor.from_request(request), transfer=number)
        return self._answer(transfer)
