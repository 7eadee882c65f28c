import django_filters

from audit.models import AuditLog
from pms_backend.api.filters import UtcIsoDateTimeFilter


class AuditLogFilter(django_filters.FilterSet):
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    action = django_filters.CharFilter()
    actor = django_filters.CharFilter(
        field_name="actor_label",
        lookup_expr="icontains",
        help_text="Part of the actor: a username, an API key prefix or a job name.",
    )
    actor_type = django_filters.ChoiceFilter(choices=AuditLog.ActorType.choices)
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditLog
        fields = ["object_type", "object_id", "action", "actor", "actor_type", "since", "until"]
