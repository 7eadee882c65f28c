"""On PostgreSQL the database itself refuses UPDATE and DELETE on the audit tables."""

from django.db import migrations

TABLES = ("audit_auditlog", "audit_auditseal")

CREATE = """
CREATE OR REPLACE FUNCTION pms_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # A plain cursor: the function body's '%' placeholders are PL/pgSQL's, not ours.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(CREATE)
        for table in TABLES:
            cursor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION pms_audit_append_only()"
            )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS pms_audit_append_only()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_auditseal")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
