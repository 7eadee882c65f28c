"""Re-key the audit chain: links become HMAC-SHA256 with ``PMS_AUDIT_CHAIN_KEY``.

Links sealed before were plain SHA-256, which anyone holding the tables could recompute
after an edit. This walks the old chain and rewrites each link keyed, as far as the old
chain verifies; from its first break on, links are left as they are, so the break still
shows (``verify_audit_chain`` names it) instead of being laundered into a valid chain.
Entry hashes are unchanged: an altered entry is still named.
"""

import hashlib
import hmac

from django.conf import settings
from django.db import migrations

GENESIS = "0" * 64
BATCH = 2000


def legacy_link_hash(previous: str, entry_hash: str) -> str:
    return hashlib.sha256(f"{previous}:{entry_hash}".encode()).hexdigest()


def link_hash(previous: str, entry_hash: str) -> str:
    # As audit.chain.link_hash computes it (kept here: a migration must not change later).
    key = hashlib.sha256(b"pms-audit-chain:" + settings.PMS_AUDIT_CHAIN_KEY.encode()).digest()
    return hmac.new(key, f"{previous}:{entry_hash}".encode(), hashlib.sha256).hexdigest()


def _rekey(apps, schema_editor):
    AuditSeal = apps.get_model("audit", "AuditSeal")
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute("ALTER TABLE audit_auditseal DISABLE TRIGGER USER")
    old_chain, new_chain, expected, after = GENESIS, GENESIS, 1, 0
    while True:
        batch = list(AuditSeal.objects.filter(sequence__gt=after).order_by("sequence")[:BATCH])
        if not batch:
            break
        changed = []
        for seal in batch:
            old_chain = legacy_link_hash(old_chain, seal.entry_hash)
            if seal.sequence != expected or old_chain != seal.chain_hash:
                batch = []  # the old chain breaks here: leave the rest as evidence
                break
            new_chain = link_hash(new_chain, seal.entry_hash)
            seal.chain_hash = new_chain
            changed.append(seal)
            expected += 1
        AuditSeal.objects.bulk_update(changed, ["chain_hash"])
        if not batch:
            break
        after = batch[-1].sequence
    if postgres:
        schema_editor.execute("ALTER TABLE audit_auditseal ENABLE TRIGGER USER")


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_truncate_trigger")]

    operations = [migrations.RunPython(_rekey, migrations.RunPython.noop, elidable=True)]
