import uuid

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from audit.actors import Actor
from pms_backend.plurals import counted
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import delivery_redeliver


class Command(BaseCommand):
    help = (
        "Send webhook deliveries again: one (--delivery), all failed ones of an endpoint "
        "(--endpoint ID --failed), or those created since a time (--since ISO-8601)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--delivery", type=int, help="One delivery id.")
        parser.add_argument("--endpoint", help="Only deliveries to this endpoint (UUID).")
        parser.add_argument("--since", help="Only deliveries created at or after this time.")
        parser.add_argument("--failed", action="store_true", help="Only failed deliveries.")

    def handle(self, *args, delivery, endpoint, since, failed, **options):
        qs = WebhookDelivery.objects.all()
        if delivery is not None:
            qs = qs.filter(pk=delivery)
        elif not (endpoint or since or failed):
            raise CommandError("Say which: --delivery ID, --endpoint ID, --since T or --failed.")
        if endpoint:
            if not WebhookEndpoint.objects.filter(pk=_uuid(endpoint)).exists():
                raise CommandError(f"No webhook endpoint {endpoint}.")
            qs = qs.filter(endpoint_id=_uuid(endpoint))
        if since:
            moment = parse_datetime(since)
            if moment is None:
                raise CommandError(f"--since {since!r} is not an ISO-8601 date-time.")
            qs = qs.filter(created_at__gte=moment)
        if failed:
            qs = qs.filter(status=WebhookDelivery.Status.FAILED)
        ids = list(qs.values_list("pk", flat=True))
        if delivery is not None and not ids:
            raise CommandError(f"No delivery {delivery}.")
        count = delivery_redeliver(actor=Actor.system("redeliver_webhooks"), delivery_ids=ids)
        self.stdout.write(f"Queued {counted(count, 'delivery', 'deliveries')} again.")


def _uuid(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"--endpoint {value!r} is not a UUID.") from None
