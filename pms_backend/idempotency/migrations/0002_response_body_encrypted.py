"""Stored answers (an order with its customer) are encrypted at rest, bound to their row.

The clear column stays (emptied) for this release, so that processes of the previous
release keep working during a rolling deploy; the next release drops it.
"""

import json

from django.db import migrations, models

from pms_backend.encryption.attributes import row_aad
from pms_backend.encryption.ciphers import encrypt


def encrypt_existing(apps, schema_editor):
    IdempotencyKey = apps.get_model("idempotency", "IdempotencyKey")
    table = IdempotencyKey._meta.db_table
    last = 0
    while True:
        stored = IdempotencyKey.objects.filter(pk__gt=last, response_body__isnull=False)
        batch = list(stored.order_by("pk")[:500])
        if not batch:
            return
        for record in batch:
            text = json.dumps(record.response_body, separators=(",", ":"))
            aad = row_aad(table, "response_body_encrypted", record.pk)
            record.response_body_ct = encrypt(text, aad=aad)
            record.response_body = None
        IdempotencyKey.objects.bulk_update(batch, ["response_body_ct", "response_body"])
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [("idempotency", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="idempotencykey",
            name="response_body_ct",
            field=models.TextField(
                blank=True,
                db_column="response_body_encrypted",
                db_default="",
                default="",
                editable=False,
            ),
        ),
        migrations.RunPython(encrypt_existing, migrations.RunPython.noop, elidable=True),
        # Pin the column's name first, so that the rename below changes only the field's.
        migrations.AlterField(
            model_name="idempotencykey",
            name="response_body",
            field=models.JSONField(db_column="response_body", editable=False, null=True),
        ),
        migrations.RenameField(
            model_name="idempotencykey", old_name="response_body", new_name="legacy_response_body"
        ),
    ]
