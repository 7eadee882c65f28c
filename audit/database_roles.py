"""The database role the application runs as: everything it needs, nothing that erases.

Migrations run as the tables' owner (``DATABASE_MIGRATION_URL``); the web and worker
processes connect as a runtime role (``DATABASE_URL``) that may read and write the shop's
tables but holds no UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER privilege on the audit
tables, and, owning nothing, cannot ALTER or DROP them or disable their triggers.
"""

from __future__ import annotations

import re

from django.db import connection

AUDIT_TABLES = ("audit_auditlog", "audit_auditseal")
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT"
AUDIT_REVOKED = "UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class RoleError(Exception):
    """The role cannot be granted from this connection (say why)."""


def grant_runtime_role(role: str, *, create: bool = False, password: str = "") -> list[str]:
    """Grant ``role`` what the application needs, idempotently; return the statements run.

    Run it connected as the tables' owner. Tables and sequences created later by the
    owner (new migrations) are covered by default privileges; the audit tables' erasing
    privileges are revoked on every run, whatever was granted before.
    """
    if connection.vendor != "postgresql":
        raise RoleError("database roles are a PostgreSQL feature; nothing to do on SQLite")
    if not _ROLE_NAME.fullmatch(role):
        raise RoleError(f"{role!r} is not a plain role name (lower case, digits, _)")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, current_database(), current_schema(), "
            "pg_get_userbyid(relowner) FROM pg_class "
            "WHERE oid = to_regclass(%s)",
            [AUDIT_TABLES[0]],
        )
        row = cursor.fetchone()
        if row is None:
            raise RoleError("the audit tables do not exist yet: run manage.py migrate first")
        me, database, schema, owner = row
        if me != owner:
            raise RoleError(
                f"connected as {me}, but the tables belong to {owner}: run this with "
                "DATABASE_MIGRATION_URL (the owner)"
            )
        if role == owner:
            raise RoleError(f"{role} owns the tables: the runtime role must be another role")
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        found = cursor.fetchone()
        statements = []
        if found is None:
            if not create:
                raise RoleError(f"role {role} does not exist (add --create to create it)")
            statements.append(f"CREATE ROLE {quote(role)} LOGIN")
        elif found[0]:
            raise RoleError(f"{role} is a superuser: no privilege can be withheld from it")
        r, s = quote(role), quote(schema)
        audit = ", ".join(quote(t) for t in AUDIT_TABLES)
        statements += [
            f"GRANT CONNECT ON DATABASE {quote(database)} TO {r}",
            f"GRANT USAGE ON SCHEMA {s} TO {r}",
            f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {s} TO {r}",
            f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT {TABLE_PRIVILEGES} ON TABLES TO {r}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} "
            f"GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {r}",
            f"REVOKE {AUDIT_REVOKED} ON {audit} FROM {r}",
        ]
        for statement in statements:
            cursor.execute(statement)
        if password:
            # Sent as a parameter, never printed or logged with the statements.
            cursor.execute(
                "SELECT format('ALTER ROLE %%I PASSWORD %%L', %s::text, %s::text)", [role, password]
            )
            cursor.execute(cursor.fetchone()[0])
            statements.append(f"ALTER ROLE {r} PASSWORD '…'")
    return statements
