from django.core.management.base import BaseCommand, CommandError

from inventory.integrity import inventory_drift
from pms_backend.plurals import counted


class Command(BaseCommand):
    help = (
        "Verify for every product that its stock levels add up to its total, and at every "
        "location that the ledger sums to the level and that reserved equals what open "
        "(pending/processing) orders hold there; and that every order line's allocations "
        "add up to its quantity. Exit 1 on any mismatch."
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
