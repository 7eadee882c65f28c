from django.core.management.base import BaseCommand, CommandError

from inventory.integrity import inventory_drift
from pms_backend.plurals import counted


class Command(BaseCommand):
    help = (
        "Verify for every product that the ledger sums to the stock row and that reserved "
        "equals the quantities of open (pending/processing) orders. Exit 1 on any mismatch."
    )

    def handle(self, *args, **options):
        drift = inventory_drift()
        for item in drift:
            self.stderr.write(f"MISMATCH {item}")
        if drift:
            raise CommandError(
                f"{counted(len(drift), 'inventory mismatch', 'inventory mismatches')} found.",
                returncode=1,
            )
        self.stdout.write("Inventory OK: stock, ledger and open orders agree.")
