from django.core.management.base import BaseCommand, CommandError

from audit.chain import audit_seal, verify_chain


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain from its start; report the first entry that was "
        "altered, removed or reordered and exit 1. --seal first seals settled new entries."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seal", action="store_true", help="Seal new entries before verifying."
        )

    def handle(self, *args, seal: bool, **options):
        if seal:
            self.stdout.write(f"Sealed {audit_seal()} new entr(y/ies).")
        report = verify_chain()
        if not report.ok:
            self.stderr.write(f"TAMPERED: {report.problem}")
            raise CommandError(
                f"Audit chain broken after {report.verified} good link(s).", returncode=1
            )
        self.stdout.write(
            f"Audit chain intact: {report.verified} sealed entr(y/ies) verified; "
            f"{report.unsealed} not sealed yet."
        )
