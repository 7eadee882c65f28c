"""Orders over HTTP: idempotent placement, reading one's own orders, staff transitions."""

from __future__ import annotations

import copy
import re

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.actors import Actor
from orders import selectors, services
from orders.api.serializers import (
    CancelSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    RefundSerializer,
    TransitionSerializer,
)
from orders.filters import OrderFilter
from pms_backend.api.problems import domain_error_body, problem_response
from pms_backend.apikeys import scopes
from pms_backend.apikeys.models import ApiKey
from pms_backend.errors import InvalidInput
from pms_backend.idempotency.services import request_fingerprint, run_idempotently

PROBLEM = {"description": "problem+json error"}
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": _KEY_PATTERN.pattern},
    location=OpenApiParameter.HEADER,
    required=True,
    description="Unique per order attempt (1-255 printable ASCII characters). A retry with "
    "the same key and body returns the first answer; another body gets 422.",
)


_ORDER_INPUT = OrderCreateSerializer()


def _order_input(data) -> OrderCreateSerializer:
    """Return a serializer of ``data`` sharing the fields of one built per process.

    Building OrderCreateSerializer's nested fields (a deep copy of each declared field,
    per request) cost more than validating with them; validation keeps no state in the
    fields, and each request gets its own serializer for its data, errors and result.
    """
    _ORDER_INPUT.fields  # noqa: B018 -- built once, then shared by the copies
    serializer = copy.copy(_ORDER_INPUT)
    serializer.initial_data = data
    return serializer


@extend_schema_view(
    list=extend_schema(summary="List orders (a storefront key sees its own)"),
    retrieve=extend_schema(summary="Get an order", responses={200: OrderSerializer, 404: PROBLEM}),
)
class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    rate_limit_bucket = {"create": "orders"}
    required_scopes = {
        "list": scopes.ORDERS_READ,
        "retrieve": scopes.ORDERS_READ,
        "create": scopes.ORDERS_WRITE,
        "process": scopes.ORDERS_MANAGE,
        "complete": scopes.ORDERS_MANAGE,
        "cancel": scopes.ORDERS_MANAGE,
        "refund": scopes.ORDERS_MANAGE,
    }

    def get_queryset(self):
        key = self.request.auth if isinstance(self.request.auth, ApiKey) else None
        # A key that cannot manage orders reads only the orders it placed.
        if key is not None and not key.has_scope(scopes.ORDERS_MANAGE):
            return selectors.order_list(api_key=key)
        return selectors.order_list()

    @extend_schema(
        summary="Place an order",
        parameters=[IDEMPOTENCY_HEADER],
        request=OrderCreateSerializer,
        responses={
            201: OrderSerializer,
            400: PROBLEM,
            409: PROBLEM,
            422: PROBLEM,
        },
    )
    def create(self, request):
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            raise InvalidInput(
                "idempotency_key_required",
                "Send an Idempotency-Key header (unique per order attempt).",
            )
        if not _KEY_PATTERN.match(key):
            raise InvalidInput(
                "invalid_idempotency_key",
                "The Idempotency-Key must be 1 to 255 printable ASCII characters.",
            )
        serializer = _order_input(request.data)
        serializer.is_valid(raise_exception=True)
        actor = Actor.from_request(request)
        data = serializer.validated_data

        def place():
            order = services.order_place(
                actor=actor,
                items=data["items"],
                customer=data["customer"],
                shipping_address=data["shipping_address"],
            )
            return status.HTTP_201_CREATED, order.placed_representation

        owner = f"key:{actor.api_key.prefix}" if actor.api_key else f"user:{request.user.pk}"
        outcome = run_idempotently(
            owner=owner,
            key=key,
            scope="POST /api/v1/orders/",
            request_hash=request_fingerprint("orders.create", request.data),
            action=place,
            error_body=domain_error_body,
        )
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
        if outcome.status >= 400:
            return problem_response(outcome.body, outcome.status, headers)
        return Response(outcome.body, status=outcome.status, headers=headers)

    def _transition(self, request, name: str, serializer_class=None) -> Response:
        order = self.get_object()
        serializer = (serializer_class or TransitionSerializer)(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        order = services.order_transition(
            actor=Actor.from_request(request),
            order_id=order.pk,
            transition=name,
            **serializer.validated_data,
        )
        return Response(OrderSerializer(selectors.order_list().get(pk=order.pk)).data)

    _schema = extend_schema(
        request=TransitionSerializer,
        responses={200: OrderSerializer, 404: PROBLEM, 409: PROBLEM},
    )

    @_schema
    @action(detail=True, methods=["post"])
    def process(self, request, pk=None):
        """Pending → Processing (the reservation is kept and no longer expires)."""
        return self._transition(request, "process")

    @_schema
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        """Processing → Completed (the reservation becomes a sale)."""
        return self._transition(request, "complete")

    @extend_schema(
        request=CancelSerializer, responses={200: OrderSerializer, 404: PROBLEM, 409: PROBLEM}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Pending or Processing → Cancelled (the reservation is released)."""
        return self._transition(request, "cancel", CancelSerializer)

    @extend_schema(
        request=RefundSerializer, responses={200: OrderSerializer, 404: PROBLEM, 409: PROBLEM}
    )
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        """Completed → Refunded; ``{"restock": true}`` puts the goods back on hand."""
        return self._transition(request, "refund", RefundSerializer)
