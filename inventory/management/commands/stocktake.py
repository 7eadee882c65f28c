import csv
import io
import sys

from django.core.management.base import BaseCommand, CommandError

from audit.actors import Actor
from catalog.models import Product
from inventory.models import InventoryMovement
from inventory.services import location_resolve
from inventory.stocktake import stock_set_levels
from pms_backend.errors import DomainError
from pms_backend.plurals import counted

MAX_ROWS = 100_000


class Command(BaseCommand):
    help = (
        "Post a stocktake of one location from a count sheet (CSV with the columns sku and "
        "on_hand; '-' for stdin): each product whose level there differs gets a correction "
        "movement with the reason. All of it or nothing: a count below what open orders "
        "have reserved there refuses the whole sheet."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of the CSV count sheet, or '-' to read stdin.")
        parser.add_argument(
            "--location",
            help="The code of the location counted (default: the default location).",
        )
        parser.add_argument("--reason", required=True, help="Why: recorded on each correction.")

    def handle(self, *args, file: str, location: str | None, reason: str, **options):
        counts = self._read(file)
        try:
            place = location_resolve(location)
            skus = dict(Product.objects.filter(sku__in=counts).values_list("sku", "pk").iterator())
            unknown = [sku for sku in counts if sku not in skus]
            if unknown:
                raise CommandError(
                    f"No product has the SKU {', '.join(unknown[:20])}"
                    + ("…" if len(unknown) > 20 else "")
                    + ". Nothing was posted."
                )
            moved = stock_set_levels(
                actor=Actor.system("stocktake"),
                targets={skus[sku]: on_hand for sku, on_hand in counts.items()},
                kind=InventoryMovement.Kind.CORRECTION,
                reason=reason,
                reference=f"stocktake:{place.code}"[:64],
                location=place,
            )
        except DomainError as exc:
            raise CommandError(f"{exc.detail} Nothing was posted.") from exc
        self.stdout.write(
            f"Stocktake at {place.code}: {counted(len(counts), 'product')} counted, "
            f"{counted(moved, 'correction')} posted."
        )

    def _read(self, file: str) -> dict[str, int]:
        try:
            if file == "-":
                raw = sys.stdin.read()
            else:
                with open(file, encoding="utf-8-sig") as source:
                    raw = source.read()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"Cannot read {file}: it is not UTF-8 text.") from exc
        reader = csv.DictReader(io.StringIO(raw))
        try:
            if not {"sku", "on_hand"} <= set(reader.fieldnames or []):
                raise CommandError("The first line must name the columns sku and on_hand.")
            counts = self._counts(reader)
        except csv.Error as exc:  # a field past the csv module's limit, say
            raise CommandError(f"Line {reader.line_num}: {exc}.") from exc
        if not counts:
            raise CommandError("The sheet counts no product.")
        return counts

    @staticmethod
    def _counts(reader: csv.DictReader) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            sku, cell = (row.get("sku") or "").strip(), (row.get("on_hand") or "").strip()
            if not sku and not cell:
                continue
            if not (cell.isascii() and cell.isdigit()):
                raise CommandError(f"Line {line}: on_hand {cell[:20]!r} is not a whole number.")
            if "\x00" in sku:
                raise CommandError(f"Line {line}: a SKU holds no NUL character.")
            if sku in counts:
                raise CommandError(f"Line {line}: {sku} is counted twice.")
            counts[sku] = int(cell)
            if len(counts) > MAX_ROWS:
                raise CommandError(f"At most {MAX_ROWS:,} products per sheet.")
        return counts
