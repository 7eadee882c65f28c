from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class PingView(APIView):
    """A constant answer through the whole DRF stack: the benchmarks' ceiling."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Constant answer (no auth)",
        responses={200: inline_serializer("Ping", {"status": serializers.CharField()})},
        auth=[],
    )
    def get(self, request):
        return Response({"status": "ok"})
