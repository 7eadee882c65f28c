from django.core.management.base import BaseCommand, CommandError

from audit.chain import Anchor, audit_seal, current_anchor, verify_chain
from pms_backend.plurals import counted


def _anchor(text: str) -> Anchor:
    try:
        return Anchor.parse(text)
    except ValueError as exc:
        raise CommandError(str(exc), returncode=2) from exc


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain from its start; report the first entry that was "
        "altered, removed or reordered and exit 1. --seal first seals settled new entries "
        "and prints the anchor COUNT:HEAD (keep it outside the database); --anchor "
        "COUNT:HEAD also exits 1 when the chain no longer reaches that count with that head."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seal",
            action="store_true",
            help="Seal new entries before verifying; print the anchor COUNT:HEAD last.",
        )
        parser.add_argument(
            "--anchor",
            metavar="COUNT:HEAD",
            help="An anchor printed or published earlier: the chain must still reach it.",
        )

    def handle(self, *args, seal: bool, anchor: str | None, **options):
        expected = _anchor(anchor) if anchor else None
        if seal:
            self.stdout.write(f"Sealed {counted(audit_seal(), 'new entry', 'new entries')}.")
        report = verify_chain(anchor=expected)
        if not report.ok:
            self.stderr.write(f"TAMPERED: {report.problem}")
            raise CommandError(
                f"Audit chain broken after {counted(report.verified, 'good link')}.", returncode=1
            )
        self.stdout.write(
            f"Audit chain intact: {counted(report.verified, 'sealed entry', 'sealed entries')} "
            f"verified; {report.unsealed:,} not sealed yet."
            + (f" It reaches the anchor {expected}." if expected else "")
        )
        if seal:
            self.stdout.write(str(current_anchor()))
