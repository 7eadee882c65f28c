"""Create the four staff groups with their permissions (re-running keeps them in step)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from pms_backend.staff.roles import ROLES


def create_roles(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the groups get them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codes in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            # A permission of a model a later migration makes is not there yet: the later
            # roles migration that depends on it grants it (ROLES is read as it is now).
            permissions += Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            )
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("catalog", "0001_initial"),
        ("inventory", "0001_initial"),
        ("orders", "0001_initial"),
        ("audit", "0004_append_only_triggers"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
