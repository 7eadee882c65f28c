"""The staff groups again, now that stock locations, their levels and transfers exist:
each group gets what ROLES gives it today (0001 could grant only the models made before
it)."""

import importlib

from django.db import migrations

first = importlib.import_module("pms_backend.staff.migrations.0001_roles")


class Migration(migrations.Migration):
    dependencies = [
        ("staff", "0001_roles"),
        ("inventory", "0004_transfers"),
        ("orders", "0004_line_allocations"),
    ]

    operations = [migrations.RunPython(first.create_roles, migrations.RunPython.noop)]
