"""PostgreSQL refuses TRUNCATE on the audit tables too (row triggers never see it).

The runtime role has no TRUNCATE privilege at all (``grant_runtime_role``); this stops the
tables' owner — a migration, ``manage.py flush``, a hand at the psql prompt. The one
exception is for test databases: a superuser session with ``pms.audit_truncate`` set to
``allowed`` (tests/conftest.py sets it on the test database) may empty them between tests.
"""

from django.db import migrations

TABLES = ("audit_auditlog", "audit_auditseal")

CREATE = """
CREATE OR REPLACE FUNCTION pms_audit_no_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('pms.audit_truncate', true) = 'allowed'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: TRUNCATE on % refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(CREATE)
        for table in TABLES:
            cursor.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pms_audit_no_truncate()"
            )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS pms_audit_no_truncate()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_append_only_triggers")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
