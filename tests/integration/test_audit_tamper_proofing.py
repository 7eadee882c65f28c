"""The audit log against someone holding the database: the runtime role cannot erase it,
the owner cannot TRUNCATE it by accident, a chain recomputed without the key does not
verify, and a cut-off tail is caught by an anchor kept outside."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.chain import audit_seal, entry_hash, legacy_link_hash, verify_chain
from audit.models import AuditLog, AuditSeal
from pms_backend.events.models import Event
from tests.integration.websockets import Communicator
from webhooks import services as webhooks
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")
AUDIT_TABLES = ("audit_auditlog", "audit_auditseal")


@contextmanager
def triggers_off(*tables: str):
    """Play the owner gone rogue: the owner may switch its own tables' triggers off."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


@pytest.fixture
def sealed_log(make_product):
    for _ in range(5):
        make_product("published")
    assert audit_seal(now=timezone.now() + timedelta(seconds=5)) == AuditLog.objects.count()
    return list(AuditLog.objects.order_by("pk"))


@pytest.fixture
def runtime_role(db):
    """A login role granted as docs/deployment.md says, by the owner's connection."""
    role = f"pms_runtime_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'runtime-pass'")
    try:
        call_command("grant_runtime_role", role)
        yield role
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")


def connect_as(role: str) -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        dbname=db["NAME"],
        user=role,
        password="runtime-pass",
        autocommit=True,
    )


def test_the_runtime_role_can_neither_erase_nor_rewrite_the_audit_log(sealed_log, runtime_role):
    statements = [
        *(f"TRUNCATE {table}" for table in AUDIT_TABLES),
        "DELETE FROM audit_auditlog",
        "DELETE FROM audit_auditseal",
        "UPDATE audit_auditlog SET action = 'nothing'",
        "UPDATE audit_auditseal SET chain_hash = 'x'",
        "ALTER TABLE audit_auditlog DISABLE TRIGGER USER",
        "ALTER TABLE audit_auditseal DISABLE TRIGGER USER",
        "DROP TABLE audit_auditseal",
    ]
    refused = {}
    with connect_as(runtime_role) as runtime:
        for statement in statements:
            try:
                runtime.execute(statement)
            except psycopg.errors.InsufficientPrivilege as exc:
                refused[statement] = str(exc)
        # What the application does need, it has.
        count = runtime.execute("SELECT count(*) FROM audit_auditlog").fetchone()[0]
        runtime.execute("UPDATE catalog_product SET name = name WHERE id = 0")

    assert set(refused) == set(statements)
    # Refused by the privilege system itself, not by the (owner-removable) triggers.
    assert all("append-only" not in message for message in refused.values()), refused
    assert count == len(sealed_log) == AuditLog.objects.count()
    assert verify_chain().ok


def test_the_application_runs_as_the_runtime_role(runtime_role, tmp_path):
    """Writing a product (with its audit entry and event), sealing and verifying the chain:
    the runtime role can do the application's work."""
    db = connection.settings_dict
    url = (
        f"postgres://{runtime_role}:runtime-pass@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PMS_"))},
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": url,
        "REDIS_URL": "",
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
        "PMS_AUDIT_CHAIN_KEY": settings.PMS_AUDIT_CHAIN_KEY,
        "LOG_LEVEL": "WARNING",
    }
    code = textwrap.dedent(
        """
        import time
        from datetime import timedelta
        from django.db import connection
        from django.utils import timezone
        from audit.actors import Actor
        from audit.chain import audit_seal, verify_chain
        from catalog.services import category_create, product_create
        actor = Actor.system("runtime-check")
        category = category_create(actor=actor, name="Runtime")
        product_create(actor=actor, sku="RT-1", name="Lamp", price="5.00", category=category)
        sealed = audit_seal(now=timezone.now() + timedelta(seconds=5))
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            print(cursor.fetchone()[0], sealed, verify_chain().ok)
        """
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.split() == [runtime_role, str(AuditLog.objects.count()), "True"]
    assert Event.objects.filter(type="audit.sealed").exists()


def test_the_owner_cannot_truncate_the_audit_log(sealed_log):
    for table in AUDIT_TABLES:
        with (
            pytest.raises(DatabaseError, match="append-only: TRUNCATE"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            # The test database lets a superuser's flush through between tests
            # (tests/conftest.py); a production database has no such setting.
            cursor.execute("SET LOCAL pms.audit_truncate = 'no'")
            cursor.execute(f"TRUNCATE {table} CASCADE")
    assert AuditLog.objects.count() == len(sealed_log)
    assert AuditSeal.objects.count() == len(sealed_log)


def test_a_chain_recomputed_with_plain_sha256_is_detected(sealed_log):
    victim = sealed_log[2]
    with triggers_off(*AUDIT_TABLES):
        AuditLog.objects.filter(pk=victim.pk).update(actor_label="user:someone-else")
        chain = "0" * 64
        for seal in AuditSeal.objects.order_by("sequence"):
            digest = entry_hash(AuditLog.objects.get(pk=seal.entry_id))
            chain = legacy_link_hash(chain, digest)
            AuditSeal.objects.filter(pk=seal.pk).update(entry_hash=digest, chain_hash=chain)

    report = verify_chain()

    assert not report.ok and report.verified == 0, report
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_chain")
    assert failure.value.returncode == 1


def test_a_removed_tail_is_detected_with_the_anchor(sealed_log, make_product, capsys):
    make_product()
    time.sleep(2.1)  # entries are sealed once settled
    call_command("verify_audit_chain", "--seal")
    anchor = capsys.readouterr().out.strip().splitlines()[-1]
    count, head = ANCHOR.fullmatch(anchor).groups()
    assert int(count) == AuditLog.objects.count() == AuditSeal.objects.count()
    # Each seal published the anchor it reached, for receivers to keep outside.
    published = Event.objects.filter(type="audit.sealed").order_by("-pk").first()
    assert published.data == {"count": int(count), "head": head}
    call_command("verify_audit_chain", "--anchor", anchor)
    assert "reaches the anchor" in capsys.readouterr().out

    newest = list(AuditLog.objects.order_by("-pk").values_list("pk", flat=True)[:2])
    with triggers_off(*AUDIT_TABLES):
        AuditSeal.objects.filter(entry_id__in=newest).delete()
        AuditLog.objects.filter(pk__in=newest).delete()

    assert verify_chain().ok  # a shorter chain is still a consistent chain ...
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_chain", "--anchor", anchor)
    assert failure.value.returncode == 1  # ... that no longer reaches the anchor
    assert "does not reach the anchor" in capsys.readouterr().err


def test_a_bad_anchor_is_a_usage_error(sealed_log):
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_chain", "--anchor", "5:not-a-hash")
    assert failure.value.returncode == 2


def test_audit_sealed_reaches_a_webhook_receiver(receiver, make_product):
    webhooks.endpoint_create(
        actor=Actor.system("tests"), url=receiver.url, event_types=["audit.sealed"]
    )
    make_product()

    audit_seal(now=timezone.now() + timedelta(seconds=5))

    (received,) = receiver.wait_for(1)
    envelope = json.loads(received.body)
    last = AuditSeal.objects.order_by("-sequence").first()
    assert envelope["type"] == "audit.sealed"
    assert envelope["data"] == {"count": last.sequence, "head": last.chain_hash}


def test_the_migration_rekeys_an_unkeyed_chain_up_to_its_first_break(sealed_log):
    """Chains sealed before the switch (plain SHA-256) keep verifying once re-keyed; a
    break in them stays a break."""
    rekey = importlib.import_module("audit.migrations.0006_keyed_chain")._rekey
    seals = list(AuditSeal.objects.order_by("sequence"))
    with triggers_off("audit_auditseal"):
        chain = "0" * 64
        for seal in seals:  # the chain as the previous release sealed it
            chain = legacy_link_hash(chain, seal.entry_hash)
            AuditSeal.objects.filter(pk=seal.pk).update(chain_hash=chain)
    assert not verify_chain().ok

    with connection.schema_editor() as editor:
        rekey(django_apps, editor)

    assert verify_chain().ok

    # A legacy chain broken at its fourth link: re-keying stops there.
    with triggers_off("audit_auditseal"):
        chain = "0" * 64
        for seal in seals:
            chain = legacy_link_hash(chain, seal.entry_hash)
            stored = "f" * 64 if seal.sequence == 4 else chain
            AuditSeal.objects.filter(pk=seal.pk).update(chain_hash=stored)
    with connection.schema_editor() as editor:
        rekey(django_apps, editor)

    report = verify_chain()
    assert not report.ok and report.verified == 3 and "seal 4" in report.problem


def test_granting_is_idempotent_creates_the_role_and_covers_later_tables(monkeypatch):
    role = f"pms_runtime_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PMS_TEST_RUNTIME_PASSWORD", "runtime-pass")
    try:
        for _ in range(2):  # a second run changes nothing and fails on nothing
            call_command(
                "grant_runtime_role",
                role,
                "--create",
                "--password-env",
                "PMS_TEST_RUNTIME_PASSWORD",
            )
        with connection.cursor() as cursor:  # a table a later migration adds
            cursor.execute("CREATE TABLE pms_later_table (id int)")
        with connect_as(role) as runtime:
            runtime.execute("INSERT INTO pms_later_table VALUES (1)")
            runtime.execute(
                "INSERT INTO audit_auditlog (created_at, actor_type, actor_id, "
                "actor_label, action, object_type, object_id, object_repr, changes, "
                "request_id) VALUES (now(), 'system', 'x', 'job:x', 'test.append', "
                "'', '', '', '{}', '')"
            )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                runtime.execute("DELETE FROM audit_auditlog")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS pms_later_table")
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone():
                cursor.execute(f"DROP OWNED BY {role}")
                cursor.execute(f"DROP ROLE {role}")
    assert AuditLog.objects.filter(action="test.append").count() == 1


def test_grant_refuses_a_missing_role_without_create():
    with pytest.raises(CommandError, match="does not exist"):
        call_command("grant_runtime_role", f"pms_runtime_{uuid.uuid4().hex[:8]}")


@pytest.mark.asyncio
async def test_an_audit_reader_hears_audit_sealed_on_the_websocket(make_key, make_product):
    from asgiref.sync import sync_to_async

    from pms_backend.asgi import application

    key = await sync_to_async(make_key)("audit:read", name="auditor")
    comm = Communicator(
        application, "/ws/v1/events/", headers=[(b"authorization", f"Api-Key {key}".encode())]
    )
    assert (await comm.connect())[0]
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["audit"]}))
    assert json.loads(await comm.receive_from()) == {
        "type": "subscribed",
        "topics": ["audit"],
    }

    await sync_to_async(make_product)()
    await sync_to_async(audit_seal)(now=timezone.now() + timedelta(seconds=5))

    frame = json.loads(await comm.receive_from())
    last = await sync_to_async(lambda: AuditSeal.objects.order_by("-sequence").first())()
    assert frame["type"] == "audit.sealed"
    assert frame["data"] == {"count": last.sequence, "head": last.chain_hash}
    await comm.disconnect()


def test_migrate_connects_with_the_migration_url(tmp_path):
    """``DATABASE_URL`` names a database that does not exist here: ``migrate`` works all
    the same, on ``DATABASE_MIGRATION_URL``; other commands use ``DATABASE_URL``."""
    db = connection.settings_dict
    server = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PMS_"))},
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"{server}/pms_no_such_database",
        "DATABASE_MIGRATION_URL": f"{server}/{db['NAME']}",
        "DATABASE_POOL": "false",
        "REDIS_URL": "",
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
        "LOG_LEVEL": "WARNING",
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    migrated = manage("migrate", "--check")
    other = manage("showmigrations", "audit")

    assert migrated.returncode == 0, migrated.stderr[-2000:]
    assert other.returncode != 0 and "pms_no_such_database" in other.stderr


def test_audit_sealed_goes_only_to_endpoints_that_name_it(receiver, make_product):
    webhooks.endpoint_create(actor=Actor.system("tests"), url=receiver.url)  # every event
    make_product()
    created = len(receiver.wait_for(1))

    audit_seal(now=timezone.now() + timedelta(seconds=5))

    # Handed out (tests dispatch at commit), and to no endpoint: nothing to wait for (a
    # sleep, then a count, proves nothing on a machine slower than the sleep).
    sealed = Event.objects.get(type="audit.sealed")
    assert sealed.dispatched_at is not None
    assert not WebhookDelivery.objects.filter(event=sealed).exists()
    assert len(receiver.received) == created == 1
