"""Customer data leaves the outbox's clear ``data``: encrypted into ``personal_data``."""

import json

from django.db import migrations, models

from pms_backend.encryption.attributes import row_aad
from pms_backend.encryption.ciphers import encrypt

PERSONAL_FIELDS = ("customer", "shipping_address")  # as pms_backend.events.models has them


def seal_existing(apps, schema_editor):
    Event = apps.get_model("events", "Event")
    last = 0
    while True:
        batch = list(Event.objects.filter(pk__gt=last, topic="orders").order_by("pk")[:500])
        if not batch:
            return
        changed = []
        for event in batch:
            personal = {k: event.data.pop(k) for k in PERSONAL_FIELDS if k in event.data}
            if personal:
                text = json.dumps(personal, separators=(",", ":"))
                aad = row_aad(Event._meta.db_table, "personal_data", event.event_id)
                event.personal_ct = encrypt(text, aad=aad)
                changed.append(event)
        Event.objects.bulk_update(changed, ["data", "personal_ct"])
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [("events", "0002_event_request_id")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="personal_ct",
            field=models.TextField(
                blank=True, db_column="personal_data", db_default="", default="", editable=False
            ),
        ),
        migrations.RunPython(seal_existing, migrations.RunPython.noop, elidable=True),
    ]
