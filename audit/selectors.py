from django.db.models import QuerySet

from audit.models import AuditLog


def audit_entries() -> QuerySet[AuditLog]:
    """Return the audit log, newest first."""
    return AuditLog.objects.all()


def audit_entries_for(obj) -> QuerySet[AuditLog]:
    """Return the entries about one model instance, newest first."""
    return AuditLog.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
