from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.chain import audit_seal, verify_chain
from audit.models import AuditLog, AuditSeal

pytestmark = pytest.mark.django_db


@contextmanager
def triggers_off(table: str):
    """Let a test play the attacker with direct table access (owner can disable triggers)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


@pytest.fixture
def sealed_log(make_product):
    for _ in range(5):
        make_product("published")
    assert audit_seal(now=timezone.now() + timedelta(seconds=5)) == AuditLog.objects.count()
    return list(AuditLog.objects.order_by("pk"))


def test_an_untouched_log_verifies(sealed_log, capsys):
    report = verify_chain()
    assert report.ok and report.verified == len(sealed_log) and report.unsealed == 0
    call_command("verify_audit_chain")
    assert (
        f"Audit chain intact: {len(sealed_log)} sealed entries verified; 0 not sealed yet."
        in capsys.readouterr().out
    )


def test_new_entries_are_sealed_after_they_settle(sealed_log, make_product):
    make_product()
    assert audit_seal() == 0  # younger than the settle time: left for the next run
    assert audit_seal(now=timezone.now() + timedelta(seconds=5)) == 1
    assert verify_chain().ok


def test_an_altered_entry_is_named(sealed_log):
    victim = sealed_log[3]
    with triggers_off("audit_auditlog"):
        AuditLog.objects.filter(pk=victim.pk).update(actor_label="user:someone-else")

    report = verify_chain()

    assert not report.ok and f"entry {victim.pk}" in report.problem and "altered" in report.problem
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_chain")
    assert failure.value.returncode == 1


def test_a_removed_entry_is_named(sealed_log):
    victim = sealed_log[2]
    with triggers_off("audit_auditlog"):
        AuditLog.objects.filter(pk=victim.pk).delete()

    report = verify_chain()

    assert f"entry {victim.pk}" in report.problem and "removed" in report.problem


def test_reordered_links_are_detected(sealed_log):
    first, second = AuditSeal.objects.order_by("sequence")[1:3]
    with triggers_off("audit_auditseal"):
        AuditSeal.objects.filter(pk=first.pk).update(entry_id=-1)
        AuditSeal.objects.filter(pk=second.pk).update(
            entry_id=first.entry_id, entry_hash=first.entry_hash
        )
        AuditSeal.objects.filter(pk=first.pk).update(
            entry_id=second.entry_id, entry_hash=second.entry_hash
        )

    report = verify_chain()

    assert not report.ok
    assert f"seal {first.sequence}" in report.problem


@pytest.mark.postgres
def test_postgresql_refuses_update_and_delete_on_the_log(sealed_log):
    for statement in (
        "UPDATE audit_auditlog SET action = 'nothing' WHERE id = %s",
        "DELETE FROM audit_auditlog WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [sealed_log[0].pk])
    assert AuditLog.objects.filter(pk=sealed_log[0].pk, action=sealed_log[0].action).exists()
