"""The staff groups again, now that refunds and returns exist: order managers refund and
run returns, warehouse staff receive them (ROLES as it is now)."""

import importlib

from django.db import migrations

first = importlib.import_module("pms_backend.staff.migrations.0001_roles")


class Migration(migrations.Migration):
    dependencies = [
        ("staff", "0003_roles_fulfilments"),
        ("orders", "0008_refunds_returns"),
    ]

    operations = [migrations.RunPython(first.create_roles, migrations.RunPython.noop)]
