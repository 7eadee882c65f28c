from django.core.management.base import BaseCommand, CommandError

from audit.actors import Actor
from orders.services import expired_reservations, order_expire_reservations
from pms_backend.plurals import counted


class Command(BaseCommand):
    help = (
        "Cancel Pending orders whose reservation has run out and release their stock "
        "(the job the scheduler runs every minute). --dry-run lists them instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List, change nothing.")
        parser.add_argument(
            "--batch-size", type=int, default=100, help="Orders per batch (default 100)."
        )

    def handle(self, *args, dry_run: bool, batch_size: int, **options):
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be from 1 to 10,000.")
        if dry_run:
            orders = list(expired_reservations().order_by("reserved_until"))
            for order in orders:
                self.stdout.write(
                    f"{order.number}  reserved until {order.reserved_until:%Y-%m-%d %H:%M:%S}"
                )
            self.stdout.write(f"{counted(len(orders), 'expired reservation')} would be cancelled.")
            return
        expired = order_expire_reservations(
            actor=Actor.system("cleanup_inventory"), batch_size=batch_size
        )
        self.stdout.write(
            f"Cancelled {counted(expired, 'expired order')}; "
            f"{'its' if expired == 1 else 'their'} stock is available again."
        )
