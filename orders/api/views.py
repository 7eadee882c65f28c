"""Orders over HTTP: idempotent placement, reading one's own orders, staff transitions,
refunds and returns."""

from __future__ import annotations

import copy
import re
import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.actors import Actor
from orders import fulfilments, refunds, returns, selectors, services
from orders.api.serializers import (
    CancelSerializer,
    FulfillmentCreateSerializer,
    FulfillmentUpdateSerializer,
    OrderCreateSerializer,
    OrderRefundCreateSerializer,
    OrderRefundSerializer,
    OrderSerializer,
    RefundSerializer,
    ReturnCancelSerializer,
    ReturnCreateSerializer,
    ReturnReceiveSerializer,
    ReturnRefundSerializer,
    ReturnSerializer,
    TransitionSerializer,
)
from orders.errors import OrderErrorCode as Code
from orders.filters import OrderFilter
from orders.models import Fulfillment, Order
from orders.payloads import FulfillmentOutSerializer, fulfillment_payload
from pms_backend.api.problems import domain_error_body, problem_response
from pms_backend.apikeys import scopes
from pms_backend.apikeys.models import ApiKey
from pms_backend.errors import InvalidInput, NotFound
from pms_backend.idempotency.services import request_fingerprint, run_idempotently

PROBLEM = {"description": "problem+json error"}
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
# A return's path segment: its number, "RMA-…" (anything else is no return: 404).
RETURN_PATH = r"returns/(?P<number>RMA-[0-9A-Za-z]{1,16})"

RETURN_NUMBER = OpenApiParameter(
    "number",
    {"type": "string", "pattern": "^RMA-[0-9A-Za-z]{1,16}$"},
    OpenApiParameter.PATH,
    description='The return\'s number, "RMA-…".',
)
OPTIONAL_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": _KEY_PATTERN.pattern},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Optional: a retry with the same key and body returns the first answer; "
    "another body gets 422.",
)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": _KEY_PATTERN.pattern},
    location=OpenApiParameter.HEADER,
    required=True,
    description="Unique per order attempt (1-255 printable ASCII characters). A retry with "
    "the same key and body returns the first answer; another body gets 422.",
)
REFUND_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": _KEY_PATTERN.pattern},
    location=OpenApiParameter.HEADER,
    required=True,
    description="Unique per refund (1-255 printable ASCII characters): a retry with the same "
    "key and body returns the first answer (a refund is paid once); another body gets 422.",
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


def _own_orders_key(request) -> ApiKey | None:
    """The request's key when it reaches only the orders it placed (a key without
    orders:manage); None for a key that manages orders and for staff."""
    key = request.auth if isinstance(request.auth, ApiKey) else None
    return key if key is not None and not key.has_scope(scopes.ORDERS_MANAGE) else None


def _idempotency_key(request, *, required: bool) -> str:
    """Return the request's Idempotency-Key ("" when none is sent and none is required)."""
    key = request.headers.get("Idempotency-Key", "")
    if not key and required:
        raise InvalidInput(
            "idempotency_key_required",
            "Send an Idempotency-Key header (unique per attempt).",
        )
    if key and not _KEY_PATTERN.match(key):
        raise InvalidInput(
            "invalid_idempotency_key",
            "The Idempotency-Key must be 1 to 255 printable ASCII characters.",
        )
    return key


def _answer_once(request, actor: Actor, key: str, name: str, scope: str, action) -> Response:
    """Answer with ``action()`` (``(status, body)``), once per Idempotency-Key: a retry gets
    the first answer again. Without a key, just answer."""
    if not key:
        code, body = action()
        return Response(body, status=code)
    owner = f"key:{actor.api_key.prefix}" if actor.api_key else f"user:{request.user.pk}"
    outcome = run_idempotently(
        owner=owner,
        key=key,
        scope=scope[:100],
        request_hash=request_fingerprint(name, request.data),
        action=action,
        error_body=domain_error_body,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.status >= 400:
        return problem_response(outcome.body, outcome.status, headers)
    return Response(outcome.body, status=outcome.status, headers=headers)


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
        "refunds": scopes.ORDERS_READ,
        "create_refund": scopes.ORDERS_MANAGE,
        "returns": scopes.ORDERS_READ,
        "return_detail": scopes.ORDERS_READ,
        # A storefront key asks for returns of the orders it placed; staff do the rest.
        "create_return": scopes.ORDERS_WRITE,
        "receive_return": scopes.ORDERS_MANAGE,
        "refund_return": scopes.ORDERS_MANAGE,
        "cancel_return": scopes.ORDERS_MANAGE,
    }
    # Staff sessions: what the order page's refund and return forms ask of them. A refund
    # pays money (order managers); receiving a return is the warehouse's work too.
    staff_permissions = {
        # Moves that pay money back or ship goods ask what the pages doing those ask.
        "refund": ("orders.change_order", "orders.add_refund"),
        "complete": ("orders.change_order", "orders.add_fulfillment"),
        "refunds": ("orders.view_order",),
        "returns": ("orders.view_order",),
        "return_detail": ("orders.view_order",),
        "create_refund": ("orders.add_refund",),
        "create_return": ("orders.add_return",),
        "receive_return": ("orders.change_return",),
        "cancel_return": ("orders.change_return",),
        "refund_return": ("orders.add_refund",),
    }

    def get_queryset(self):
        # A key that cannot manage orders reads only the orders it placed.
        return selectors.order_list(api_key=_own_orders_key(self.request))

    @extend_schema(
        summary="Place an order",
        description="Each line names a `variant` (its id: a product without variants is its "
        "own variant) or, as in v1, a `product` with exactly one variant; a product with "
        "several is 400 `variant_required`, naming them (`lines[].variants`). A variant of a "
        "product that is not Published is 409 `product_unavailable`. Stock is reserved on "
        "the variant. A variant taking backorders or preorders reserves what is available "
        "and leaves the rest waiting (the item's `backordered`) up to its limit; past it, "
        "409 `backorder_limit_reached` with `lines[].available` and "
        "`lines[].backorder_available`.",
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
        key = _idempotency_key(request, required=True)
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

        return _answer_once(request, actor, key, "orders.create", "POST /api/v1/orders/", place)

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
        """Processing → Completed (the reservation becomes a sale). 409
        ``backorder_outstanding`` while a line still waits for stock (its ``backordered``)."""
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

    # --- refunds and returns --------------------------------------------------------------
    # Their reads name one order: the order list's filters (filter_backends=[]) do not apply.

    def _valid(self, serializer_class):
        serializer = serializer_class(data=self.request.data or {})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _listed(self, queryset, serializer_class) -> Response:
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    def _return_answer(self, order_pk, number: str) -> dict:
        found = selectors.return_list(order=order_pk).filter(number=number).first()
        return ReturnSerializer(found).data

    @extend_schema(
        summary="List an order's refunds, oldest first",
        responses={200: OrderRefundSerializer(many=True), 404: PROBLEM},
    )
    @action(detail=True, methods=["get"], url_path="refunds", filter_backends=[])
    def refunds(self, request, pk=None):
        order = self.get_object()
        return self._listed(selectors.refund_list(order=order), OrderRefundSerializer)

    @extend_schema(
        summary="Refund an order, in part or the rest",
        description="Pays back units of the order's lines (at most shipped less refunded "
        "already) and/or an amount (default: the units' price; more than zero, at most the "
        "total less what was refunded). A completed order refunded in full becomes "
        "`refunded`; a processing one is refunded in part only. Moves no stock: goods come "
        "back through returns. 409 `refund_exceeds_paid`, `refund_exceeds_quantity`, "
        "`order_not_refundable`; nothing is written when refused.",
        parameters=[REFUND_IDEMPOTENCY_HEADER],
        request=OrderRefundCreateSerializer,
        responses={
            201: OrderRefundSerializer,
            400: PROBLEM,
            404: PROBLEM,
            409: PROBLEM,
            422: PROBLEM,
        },
    )
    @refunds.mapping.post
    def create_refund(self, request, pk=None):
        key = _idempotency_key(request, required=True)
        data = self._valid(OrderRefundCreateSerializer)
        actor = Actor.from_request(request)

        def pay():
            refund = refunds.refund_create(
                actor=actor,
                order_id=pk,
                lines=services.merge_lines(data["lines"]),
                amount=data.get("amount"),
                reason=data["reason"],
            )
            return status.HTTP_201_CREATED, refund.payload

        return _answer_once(
            request, actor, key, "orders.refund", f"POST /api/v1/orders/{pk}/refunds/", pay
        )

    @extend_schema(
        summary="List an order's returns (RMA), oldest first",
        responses={200: ReturnSerializer(many=True), 404: PROBLEM},
    )
    @action(detail=True, methods=["get"], url_path="returns", filter_backends=[])
    def returns(self, request, pk=None):
        order = self.get_object()
        return self._listed(selectors.return_list(order=order), ReturnSerializer)

    @extend_schema(
        summary="Request a return of shipped goods",
        description="Units per line, at most shipped less returned already (409 "
        "`return_exceeds_shipped`). A key without orders:manage asks for returns of the "
        "orders it placed only.",
        parameters=[OPTIONAL_IDEMPOTENCY_HEADER],
        request=ReturnCreateSerializer,
        responses={201: ReturnSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM},
    )
    @returns.mapping.post
    def create_return(self, request, pk=None):
        key = _idempotency_key(request, required=False)
        data = self._valid(ReturnCreateSerializer)
        actor = Actor.from_request(request)

        def ask():
            rma = returns.return_request(
                actor=actor,
                order_id=pk,
                lines=services.merge_lines(data["lines"]),
                reason=data["reason"],
                placed_by=_own_orders_key(self.request),
            )
            return status.HTTP_201_CREATED, self._return_answer(rma.order_id, rma.number)

        return _answer_once(
            request, actor, key, "orders.return", f"POST /api/v1/orders/{pk}/returns/", ask
        )

    @extend_schema(
        summary="Get one of an order's returns",
        parameters=[RETURN_NUMBER],
        responses={200: ReturnSerializer, 404: PROBLEM},
    )
    @action(detail=True, methods=["get"], url_path=RETURN_PATH, filter_backends=[])
    def return_detail(self, request, pk=None, number=None):
        order = self.get_object()
        found = selectors.return_list(order=order).filter(number=number).first()
        if found is None:
            raise NotFound("unknown_return", f"Order {order.number} has no return {number}.")
        return Response(ReturnSerializer(found).data)

    def _return_step(self, request, pk, number, step: str, run) -> Response:
        key = _idempotency_key(request, required=False)
        actor = Actor.from_request(request)

        def act():
            run(actor)
            return status.HTTP_200_OK, self._return_answer(pk, number)

        path = f"POST /api/v1/orders/{pk}/returns/{number}/{step}/"
        return _answer_once(request, actor, key, f"orders.return.{step}", path, act)

    @extend_schema(
        summary="Receive a return: restock units at a location, write damaged ones off",
        description="Per line: `restocked` units go back on hand at `location` (a `return` "
        "movement in the stock ledger), `damaged` ones are written off (no stock comes "
        "back). 409 `receipt_exceeds_requested`, `return_exceeds_shipped`, "
        "`invalid_transition`, `location_inactive`; 400 `unknown_location`.",
        parameters=[RETURN_NUMBER, OPTIONAL_IDEMPOTENCY_HEADER],
        request=ReturnReceiveSerializer,
        responses={200: ReturnSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM},
    )
    @action(detail=True, methods=["post"], url_path=RETURN_PATH + r"/receive")
    def receive_return(self, request, pk=None, number=None):
        data = self._valid(ReturnReceiveSerializer)
        return self._return_step(
            request,
            pk,
            number,
            "receive",
            lambda actor: returns.return_receive(
                actor=actor, order_id=pk, number=number, lines=data["lines"]
            ),
        )

    @extend_schema(
        summary="Refund a received return",
        description="A refund of the units received (`amount` defaults to their price; "
        "lower is allowed, higher is 409 `refund_exceeds_returned`), then the return is "
        "`refunded`. Refused as any refund is (409 `refund_exceeds_paid`, …).",
        parameters=[RETURN_NUMBER, OPTIONAL_IDEMPOTENCY_HEADER],
        request=ReturnRefundSerializer,
        responses={200: ReturnSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM},
    )
    @action(detail=True, methods=["post"], url_path=RETURN_PATH + r"/refund")
    def refund_return(self, request, pk=None, number=None):
        data = self._valid(ReturnRefundSerializer)
        return self._return_step(
            request,
            pk,
            number,
            "refund",
            lambda actor: returns.return_refund(
                actor=actor,
                order_id=pk,
                number=number,
                amount=data.get("amount"),
                reason=data["reason"],
            ),
        )

    @extend_schema(
        summary="Cancel a requested return (its goods will not come)",
        parameters=[RETURN_NUMBER, OPTIONAL_IDEMPOTENCY_HEADER],
        request=ReturnCancelSerializer,
        responses={200: ReturnSerializer, 400: PROBLEM, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM},
    )
    @action(detail=True, methods=["post"], url_path=RETURN_PATH + r"/cancel")
    def cancel_return(self, request, pk=None, number=None):
        data = self._valid(ReturnCancelSerializer)
        return self._return_step(
            request,
            pk,
            number,
            "cancel",
            lambda actor: returns.return_cancel(
                actor=actor, order_id=pk, number=number, reason=data["reason"]
            ),
        )


FULFILLMENT_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": _KEY_PATTERN.pattern},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Optional, unique per shipment attempt: a retry with the same key and body "
    "returns the first answer instead of shipping twice; another body gets 422.",
)
ORDER_PATH = OpenApiParameter(
    "order_pk", {"type": "string", "format": "uuid"}, OpenApiParameter.PATH, description="Order id."
)
SEQUENCE_PATH = OpenApiParameter(
    "sequence",
    int,
    OpenApiParameter.PATH,
    description="The fulfilment's place in its order: 2 for PMS-…-2.",
)


@extend_schema_view(
    list=extend_schema(summary="List an order's fulfilments (shipments)", parameters=[ORDER_PATH]),
    retrieve=extend_schema(
        summary="Get a fulfilment",
        parameters=[ORDER_PATH, SEQUENCE_PATH],
        responses={200: FulfillmentOutSerializer, 404: PROBLEM},
    ),
)
class FulfillmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """An order's shipments: staff ship a Processing order's lines from a location."""

    serializer_class = FulfillmentOutSerializer
    lookup_field = "sequence"
    lookup_value_regex = "[0-9]{1,9}"
    http_method_names = ["get", "post", "patch", "head", "options"]
    required_scopes = {
        "list": scopes.ORDERS_READ,
        "retrieve": scopes.ORDERS_READ,
        "create": scopes.ORDERS_MANAGE,
        "partial_update": scopes.ORDERS_MANAGE,
    }
    # A staff session ships with the admin's permissions for it.
    staff_permissions = {
        "create": ("orders.add_fulfillment",),
        "partial_update": ("orders.change_fulfillment",),
    }

    def _order(self) -> Order:
        key = _own_orders_key(self.request)  # a storefront reads its own orders only
        orders = Order.objects.all() if key is None else Order.objects.filter(api_key=key)
        try:
            pk = uuid.UUID(str(self.kwargs["order_pk"]))
        except ValueError:
            pk = None
        found = list(orders.filter(pk=pk).order_by()) if pk else []
        order = found[0] if found else None
        if order is None:
            raise NotFound(Code.UNKNOWN_ORDER, f"No order is {self.kwargs['order_pk']}.")
        return order

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema's generator
            return Fulfillment.objects.none()
        order = self._order()
        fulfillments = selectors.fulfillments_shown().filter(order=order).order_by("sequence")
        for fulfillment in fulfillments:  # one order for all: not read again per row
            fulfillment.order = order
        return fulfillments

    def _answer(self, fulfillment: Fulfillment, status_code: int) -> Response:
        return Response(fulfillment_payload(fulfillment, fulfillment.order), status=status_code)

    @extend_schema(
        summary="Ship an order's lines (a fulfilment)",
        description="Sells the units at `location`: those reserved there for the order from "
        "its reservation; units reserved elsewhere are released there and must be available "
        "at `location` (else 409 `insufficient_stock` with what is there). Once every line "
        "has shipped whole the order is Completed (`order_status`). 409 "
        "`invalid_transition` for an order not in Processing, 409 "
        "`fulfillment_exceeds_remaining` for more than is left of a line; nothing is "
        "written on any refusal.",
        parameters=[ORDER_PATH, FULFILLMENT_KEY_HEADER],
        request=FulfillmentCreateSerializer,
        responses={
            201: FulfillmentOutSerializer,
            400: PROBLEM,
            404: PROBLEM,
            409: PROBLEM,
            422: PROBLEM,
        },
    )
    def create(self, request, order_pk=None):
        order = self._order()
        serializer = _shipment_input(request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "lines" in data:
            data["lines"] = services.merge_lines(data["lines"])
        key = _idempotency_key(request, required=False)
        actor = Actor.from_request(request)

        def ship():
            fulfillment = fulfilments.fulfillment_create(actor=actor, order_id=order.pk, **data)
            return status.HTTP_201_CREATED, fulfillment_payload(fulfillment, fulfillment.order)

        scope = f"POST /api/v1/orders/{order.pk}/fulfillments/"
        return _answer_once(request, actor, key, "fulfillments.create", scope, ship)

    @extend_schema(
        summary="Change a fulfilment's carrier or tracking",
        parameters=[ORDER_PATH, SEQUENCE_PATH],
        request=FulfillmentUpdateSerializer,
        responses={200: FulfillmentOutSerializer, 400: PROBLEM, 404: PROBLEM},
    )
    def partial_update(self, request, order_pk=None, sequence=None):
        order = self._order()
        serializer = FulfillmentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fulfillment = fulfilments.fulfillment_update(
            actor=Actor.from_request(request),
            order_id=order.pk,
            sequence=int(sequence),
            **serializer.validated_data,
        )
        return Response(fulfillment_payload(fulfillment, order))


_SHIPMENT_INPUT = FulfillmentCreateSerializer()


def _shipment_input(data) -> FulfillmentCreateSerializer:
    """A serializer of ``data`` sharing the fields built once per process (as
    ``_order_input`` does, for the same reason)."""
    _SHIPMENT_INPUT.fields  # noqa: B018 -- built once, then shared by the copies
    serializer = copy.copy(_SHIPMENT_INPUT)
    serializer.initial_data = data
    return serializer
