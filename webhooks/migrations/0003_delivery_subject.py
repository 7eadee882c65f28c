from django.db import migrations, models
from django.db.models import OuterRef, Subquery

OPEN = ["pending", "retrying"]


def copy_subjects(apps, schema_editor):
    """Deliveries still on their way get their event's subject (the rest never need it)."""
    Delivery = apps.get_model("webhooks", "WebhookDelivery")
    Event = apps.get_model("events", "Event")
    Delivery.objects.filter(status__in=OPEN).update(
        subject=Subquery(Event.objects.filter(pk=OuterRef("event_id")).values("subject")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_event_request_id"),
        ("webhooks", "0002_delivery_queued_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="subject",
            field=models.CharField(blank=True, default="", editable=False, max_length=100),
        ),
        migrations.RunPython(copy_subjects, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(("status__in", OPEN)),
                fields=["endpoint", "subject", "event"],
                name="delivery_open_subject_idx",
            ),
        ),
    ]
