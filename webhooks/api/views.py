"""Webhook endpoints and their deliveries over HTTP (webhooks:manage)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.actors import Actor
from pms_backend.apikeys import scopes
from webhooks import selectors, services
from webhooks.api.serializers import (
    DeliverySerializer,
    EndpointCreatedSerializer,
    EndpointSerializer,
    EndpointWriteSerializer,
)
from webhooks.filters import DeliveryFilter

PROBLEM = {"description": "problem+json error"}
MANAGE = scopes.WEBHOOKS_MANAGE


@extend_schema_view(
    list=extend_schema(summary="List webhook endpoints"),
    retrieve=extend_schema(summary="Get a webhook endpoint"),
    create=extend_schema(
        summary="Create a webhook endpoint (the secret is returned once)",
        request=EndpointWriteSerializer,
        responses={201: EndpointCreatedSerializer, 400: PROBLEM},
    ),
    partial_update=extend_schema(
        summary="Change a webhook endpoint",
        request=EndpointWriteSerializer,
        responses={200: EndpointSerializer, 400: PROBLEM, 404: PROBLEM},
    ),
    destroy=extend_schema(summary="Delete a webhook endpoint", responses={204: None, 404: PROBLEM}),
)
class EndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = EndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_scopes = dict.fromkeys(
        ("list", "retrieve", "create", "partial_update", "destroy", "rotate_secret"), MANAGE
    )
    # Staff sessions: the admin's permissions on endpoints, action by action.
    staff_permissions = {
        "list": ("webhooks.view_webhookendpoint",),
        "retrieve": ("webhooks.view_webhookendpoint",),
        "create": ("webhooks.add_webhookendpoint",),
        "partial_update": ("webhooks.change_webhookendpoint",),
        "rotate_secret": ("webhooks.change_webhookendpoint",),
        "destroy": ("webhooks.delete_webhookendpoint",),
    }

    def get_queryset(self):
        return selectors.endpoint_list()

    def create(self, request):
        serializer = EndpointWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(
            actor=Actor.from_request(request), **serializer.validated_data
        )
        body = EndpointSerializer(endpoint).data | {"secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        serializer = EndpointWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(
            actor=Actor.from_request(request),
            endpoint_id=endpoint.pk,
            data=dict(serializer.validated_data),
        )
        return Response(EndpointSerializer(endpoint).data)

    def destroy(self, request, pk=None):
        endpoint = self.get_object()
        services.endpoint_delete(actor=Actor.from_request(request), endpoint_id=endpoint.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate the secret (both signatures are sent for 24 h)",
        request=None,
        responses={200: EndpointCreatedSerializer, 404: PROBLEM},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = self.get_object()
        endpoint, secret = services.endpoint_rotate_secret(
            actor=Actor.from_request(request), endpoint_id=endpoint.pk
        )
        return Response(EndpointSerializer(endpoint).data | {"secret": secret})


@extend_schema_view(
    list=extend_schema(summary="List deliveries with their attempts"),
    retrieve=extend_schema(summary="Get a delivery with its attempts"),
)
class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    required_scopes = dict.fromkeys(("list", "retrieve", "redeliver"), MANAGE)
    # The admin lists deliveries and sends them again with the view permission.
    staff_permissions = dict.fromkeys(
        ("list", "retrieve", "redeliver"), ("webhooks.view_webhookdelivery",)
    )

    def get_queryset(self):
        return selectors.delivery_list()

    @extend_schema(
        summary="Send a delivery again now",
        request=None,
        responses={202: DeliverySerializer, 404: PROBLEM},
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = self.get_object()
        services.delivery_redeliver(actor=Actor.from_request(request), delivery_ids=[delivery.pk])
        return Response(
            DeliverySerializer(selectors.delivery_list().get(pk=delivery.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )
