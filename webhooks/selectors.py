from django.db.models import Prefetch, QuerySet

from webhooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint


def endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.all()


def delivery_list() -> QuerySet[WebhookDelivery]:
    """Deliveries newest first, with their event and every attempt (no N+1)."""
    return WebhookDelivery.objects.select_related("event").prefetch_related(
        Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("id"))
    )
