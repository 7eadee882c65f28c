"""The staff groups again, now that fulfilments exist: warehouse staff and order managers
ship orders (0001 and 0002 could grant only the models made before them)."""

import importlib

from django.db import migrations

first = importlib.import_module("pms_backend.staff.migrations.0001_roles")


class Migration(migrations.Migration):
    dependencies = [
        ("staff", "0002_roles_locations"),
        ("orders", "0007_fulfilments"),
    ]

    operations = [migrations.RunPython(first.create_roles, migrations.RunPython.noop)]
