from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from audit.api.serializers import AuditLogSerializer
from audit.filters import AuditLogFilter
from audit.selectors import audit_entries
from pms_backend.apikeys import scopes


@extend_schema_view(
    list=extend_schema(summary="Read the audit log"),
    retrieve=extend_schema(summary="Read one audit entry"),
)
class AuditLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilter
    required_scopes = {"list": scopes.AUDIT_READ, "retrieve": scopes.AUDIT_READ}

    def get_queryset(self):
        return audit_entries()
