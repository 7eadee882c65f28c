import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.actors import Actor
from catalog.importing import ImportRejected, product_import
from pms_backend.errors import DomainError


class Command(BaseCommand):
    help = (
        "Import products from a CSV file (or '-' for stdin): create new SKUs, update "
        "changed ones, set stock levels through ledger movements. The whole file is "
        "checked first and applied in one transaction: all of it or nothing. "
        "Format: docs/import-export.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of the CSV file, or '-' to read stdin.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the file and report; write nothing."
        )
        parser.add_argument(
            "--create-categories",
            action="store_true",
            help="Create categories the file names that do not exist (else an error).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, file: str, dry_run: bool, create_categories: bool, **options):
        limit = settings.PMS_IMPORT_MAX_BYTES
        if file != "-":
            try:
                size = os.path.getsize(file)
            except OSError as exc:
                raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
            if size > limit:  # refused before reading a byte
                raise CommandError(
                    f"{file} is {size / 1024 / 1024:,.0f} MB; the import limit is "
                    f"{limit / 1024 / 1024:,.0f} MB (PMS_IMPORT_MAX_BYTES). Split the file."
                )
        bars: dict[str, tqdm] = {}

        def progress(phase: str, done: int, total: int) -> None:
            bar = bars.get(phase)
            if bar is None:
                for finished in bars.values():
                    finished.close()
                bar = bars[phase] = tqdm(
                    desc=phase,
                    total=total or None,
                    unit="B",
                    unit_scale=True,
                    disable=options["no_progress"],
                    file=self.stderr._out,
                )
            bar.update(done - bar.n)

        name = "stdin" if file == "-" else os.path.basename(file)
        try:
            with sys.stdin.buffer if file == "-" else open(file, "rb") as source:
                report = product_import(
                    actor=Actor.system("import_products"),
                    source=source,
                    file_name=name,
                    dry_run=dry_run,
                    create_categories=create_categories,
                    progress=progress,
                )
        except ImportRejected as exc:
            for bar in bars.values():
                bar.close()
            for error in exc.report.errors:
                self.stderr.write(str(error))
            raise CommandError(exc.detail) from exc
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
        finally:
            for bar in bars.values():
                bar.close()
        self.stdout.write(report.summary())
