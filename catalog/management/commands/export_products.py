import os
import sys
import tempfile
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.exporting import export_csv
from catalog.models import Product
from pms_backend.plurals import counted


class Command(BaseCommand):
    help = (
        "Export every product as CSV (the format import_products reads) to FILE, or to "
        "stdout with '-'. Streams: memory stays flat whatever the catalog's size."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to write, or '-' for stdout.")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, file: str, no_progress: bool, **options):
        # The file's rows: a product sold in variants is a row per variant, none of its own.
        sold_in_variants = (
            Product.objects.filter(parent__isnull=True, variants__isnull=False)
            .values("pk")
            .distinct()
            .count()
        )
        total = Product.objects.count() - sold_in_variants
        written = 0
        with tqdm(total=total, unit="row", disable=no_progress, file=self.stderr._out) as bar:

            def progress(rows: int) -> None:
                nonlocal written
                written += rows
                bar.update(rows)

            if file == "-":
                out: Any = self.stdout._out if hasattr(self.stdout, "_out") else sys.stdout
                for chunk in export_csv(progress=progress):
                    out.write(chunk)
                out.flush()
            else:
                self._to_file(file, progress)
        # With '-' stdout carries the CSV, so the summary goes to stderr.
        rows = counted(written, "row" if sold_in_variants else "product")
        summary = f"Exported {rows} to {'stdout' if file == '-' else file}."
        (self.stderr if file == "-" else self.stdout).write(summary)

    def _to_file(self, file: str, progress) -> None:
        """Write beside the target and rename at the end: no half-written file is left."""
        folder = os.path.dirname(os.path.abspath(file))
        try:
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".csv")
        except OSError as exc:
            raise CommandError(f"Cannot write in {folder}: {exc.strerror}.") from exc
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                for chunk in export_csv(progress=progress):
                    out.write(chunk)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # as open() would have made it
            os.replace(temporary, file)
        except BaseException as exc:
            os.unlink(temporary)
            if isinstance(exc, OSError):
                raise CommandError(f"Cannot write {file}: {exc.strerror}.") from exc
            raise
