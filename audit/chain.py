"""The hash chain over the audit log: sealing new entries and verifying the whole chain.

The links are keyed (HMAC-SHA256 with ``PMS_AUDIT_CHAIN_KEY``, kept outside the
database), so whoever can write the tables still cannot compute a chain that verifies.
The tail is anchored outside: each seal run publishes ``audit.sealed`` with the anchor
``COUNT:HEAD``, and ``verify_audit_chain --anchor COUNT:HEAD`` fails once the chain no
longer reaches that count with that head (its newest entries and seals were removed).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from audit.models import AuditLog, AuditSeal
from pms_backend.events.services import publish
from pms_backend.plurals import counted

GENESIS = "0" * 64
# Entries younger than this are left for the next run: their transaction may still be
# open, and an entry that commits late must not be skipped.
SETTLE = timedelta(seconds=2)
# How far below the newest sealed entry to look for late committers.
LATE_WINDOW = 10_000
_SEAL_LOCK = 0x504D5341  # "PMSA": one sealer at a time


def entry_hash(entry: AuditLog) -> str:
    """Return the SHA-256 of an entry's content in a canonical form."""
    content = {
        "id": entry.pk,
        "created_at": entry.created_at.isoformat(),
        "actor_type": entry.actor_type,
        "actor_id": entry.actor_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "object_repr": entry.object_repr,
        "changes": entry.changes,
        "request_id": entry.request_id,
        "ip": entry.ip,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@functools.cache
def _chain_key(secret: str) -> bytes:
    return hashlib.sha256(b"pms-audit-chain:" + secret.encode()).digest()


def link_hash(previous: str, current_entry_hash: str) -> str:
    """Return the keyed link over the previous link and this entry's hash."""
    message = f"{previous}:{current_entry_hash}".encode()
    key = _chain_key(settings.PMS_AUDIT_CHAIN_KEY)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def legacy_link_hash(previous: str, current_entry_hash: str) -> str:
    """The unkeyed link of chains sealed before migration audit 0006 re-keyed them."""
    return hashlib.sha256(f"{previous}:{current_entry_hash}".encode()).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """Where the chain ended at some moment: its link count and its newest link."""

    count: int
    head: str

    def __str__(self) -> str:
        return f"{self.count}:{self.head}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """Parse ``COUNT:HEAD``; raise ``ValueError`` when it is not one."""
        match = re.fullmatch(r"(\d+):([0-9a-f]{64})", text.strip().lower())
        if match is None:
            raise ValueError(f"{text!r} is not COUNT:HEAD (HEAD: 64 hex characters)")
        return cls(int(match[1]), match[2])


def current_anchor() -> Anchor:
    """Return the anchor of the chain as sealed now."""
    last = AuditSeal.objects.order_by("-sequence").first()
    return Anchor(last.sequence, last.chain_hash) if last else Anchor(0, GENESIS)


def audit_seal(*, batch_size: int = 1000, now=None) -> int:
    """Seal settled, unsealed entries onto the chain; return how many were sealed.

    Writers never wait for this: they only insert entries. One sealer runs at a time
    (a PostgreSQL advisory lock; SQLite serialises writers anyway). Each batch sealed
    publishes ``audit.sealed`` with the new anchor, in the batch's transaction.
    """
    now = now or timezone.now()
    sealed = 0
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SEAL_LOCK])
                    if not cursor.fetchone()[0]:
                        return sealed
            last = AuditSeal.objects.order_by("-sequence").first()
            newest_sealed = AuditSeal.objects.aggregate(m=Max("entry_id"))["m"] or 0
            entries = list(
                AuditLog.objects.filter(
                    pk__gt=max(newest_sealed - LATE_WINDOW, 0), created_at__lte=now - SETTLE
                )
                .exclude(Exists(AuditSeal.objects.filter(entry_id=OuterRef("pk"))))
                .order_by("pk")[:batch_size]
            )
            if not entries:
                return sealed
            sequence = last.sequence if last else 0
            chain = last.chain_hash if last else GENESIS
            seals = []
            for entry in entries:
                sequence += 1
                digest = entry_hash(entry)
                chain = link_hash(chain, digest)
                seals.append(
                    AuditSeal(
                        sequence=sequence, entry_id=entry.pk, entry_hash=digest, chain_hash=chain
                    )
                )
            AuditSeal.objects.bulk_create(seals)
            publish("audit.sealed", {"count": sequence, "head": chain}, subject="audit:chain")
            sealed += len(seals)


@dataclass(frozen=True)
class ChainReport:
    verified: int
    unsealed: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _seals(chunk: int = 2000) -> Iterator[list[AuditSeal]]:
    after = 0
    while True:
        batch = list(AuditSeal.objects.filter(sequence__gt=after).order_by("sequence")[:chunk])
        if not batch:
            return
        yield batch
        after = batch[-1].sequence


def verify_chain(*, anchor: Anchor | None = None) -> ChainReport:
    """Walk the chain from its start; report the first entry altered, removed or reordered.

    With ``anchor``, also report a chain that no longer reaches the anchor's count with
    the anchor's head (its newest links were removed, or the chain was rewritten).
    """
    expected_sequence, chain, verified = 1, GENESIS, 0
    at_anchor = GENESIS if anchor is not None and anchor.count == 0 else None
    for batch in _seals():
        entries = AuditLog.objects.in_bulk([s.entry_id for s in batch])
        for seal in batch:
            if seal.sequence != expected_sequence:
                return ChainReport(
                    verified,
                    0,
                    f"seal {expected_sequence} is missing: links were removed "
                    f"or reordered before entry {seal.entry_id}",
                )
            entry = entries.get(seal.entry_id)
            if entry is None:
                return ChainReport(
                    verified, 0, f"entry {seal.entry_id} (seal {seal.sequence}) was removed"
                )
            if entry_hash(entry) != seal.entry_hash:
                return ChainReport(
                    verified, 0, f"entry {seal.entry_id} (seal {seal.sequence}) was altered"
                )
            chain = link_hash(chain, seal.entry_hash)
            if chain != seal.chain_hash:
                return ChainReport(
                    verified,
                    0,
                    f"the chain breaks at seal {seal.sequence} (entry "
                    f"{seal.entry_id}): links were altered or reordered",
                )
            if anchor is not None and seal.sequence == anchor.count:
                at_anchor = chain
            expected_sequence += 1
            verified += 1
    if anchor is not None and at_anchor != anchor.head:
        return ChainReport(
            verified,
            0,
            f"the chain does not reach the anchor {anchor}: it has {counted(verified, 'link')}"
            if at_anchor is None
            else f"link {anchor.count} is not the anchor's head: the chain was rewritten",
        )
    unsealed = AuditLog.objects.exclude(
        Exists(AuditSeal.objects.filter(entry_id=OuterRef("pk")))
    ).count()
    return ChainReport(verified, unsealed, None)
