"""The settings service over HTTP (settings:manage). Sensitive values read as ***."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from audit.actors import Actor
from pms_backend.apikeys import scopes
from pms_backend.shopsettings import selectors, services
from pms_backend.shopsettings.api.serializers import (
    SETTINGS_MAP_SCHEMA,
    SettingPageSerializer,
    SettingSerializer,
    SettingWriteSerializer,
    settings_map_field,
)
from pms_backend.shopsettings.registry import SCOPES

PROBLEM = {"description": "problem+json error"}
KEY = OpenApiParameter(
    "key", str, OpenApiParameter.PATH, description="Setting key, e.g. orders.max_lines."
)


class SettingViewSet(viewsets.GenericViewSet):
    serializer_class = SettingSerializer
    filter_backends: list = []
    required_scopes = dict.fromkeys(
        ("list", "bulk_update", "retrieve", "update"), scopes.SETTINGS_MANAGE
    )
    # Staff sessions read settings with the admin's view permission.
    staff_permissions = dict.fromkeys(("list", "retrieve"), ("settings.view_setting",))

    @extend_schema(summary="List every setting with the value in force")
    def list(self, request):
        states = selectors.setting_states()
        page = self.paginate_queryset([selectors.setting_representation(s) for s in states])
        return self.get_paginated_response(SettingSerializer(page, many=True).data)

    @extend_schema(
        summary="Change several settings at once (all or none); answers like the list",
        operation_id="settings_bulk_update",
        request={"application/json": SETTINGS_MAP_SCHEMA},
        responses={200: SettingPageSerializer, 400: PROBLEM, 404: PROBLEM},
    )
    def bulk_update(self, request):
        values = settings_map_field().run_validation(request.data)
        services.settings_set_many(actor=Actor.from_request(request), values=values)
        return self.list(request)

    @extend_schema(
        summary="Get a setting", parameters=[KEY], responses={200: SettingSerializer, 404: PROBLEM}
    )
    def retrieve(self, request, key: str):
        state = selectors.setting_state(key)
        return Response(SettingSerializer(selectors.setting_representation(state)).data)

    @extend_schema(
        summary="Change a setting, for the whole shop or for some products",
        parameters=[KEY],
        request=SettingWriteSerializer,
        responses={200: SettingSerializer, 400: PROBLEM, 404: PROBLEM},
    )
    def update(self, request, key: str):
        serializer = SettingWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        actor = Actor.from_request(request)
        value = serializer.validated_data["value"]
        # {"products": [...]} names the objects of the product scope: product_ids=[...].
        object_ids = {
            f"{scope.name}_ids": serializer.validated_data[scope.plural]
            for scope in SCOPES.values()
            if scope.plural in serializer.validated_data
        }
        if value is None:
            state = services.setting_reset(actor=actor, key=key, **object_ids)
        else:
            state = services.setting_set(actor=actor, key=key, value=value, **object_ids)
        return Response(SettingSerializer(selectors.setting_representation(state)).data)
