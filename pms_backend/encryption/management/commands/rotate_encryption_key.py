from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pms_backend.encryption.ciphers import DecryptionError
from pms_backend.encryption.keyring import current_key
from pms_backend.encryption.services import rotate_encryption, rotation_backlog
from pms_backend.plurals import counted


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value with the newest key of PMS_ENCRYPTION_KEYS, in "
        "batches, while the shop runs. Resumable: run it again after an interruption. "
        "Keep the old key in the ring until this has finished."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per batch.")
        parser.add_argument(
            "--reindex",
            action="store_true",
            help="Rewrite every row (also rebuilds blind indexes after PMS_BLIND_INDEX_KEY "
            "changed).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")

    def handle(self, *args, batch_size: int, reindex: bool, no_progress: bool, **options):
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be from 1 to 10,000.")
        backlog = rotation_backlog(reindex=reindex)
        total = sum(backlog.values())
        self.stdout.write(f"Newest key {current_key().kid}: {counted(total, 'row')} to re-encrypt.")
        bars = {
            model: tqdm(
                total=count,
                desc=model._meta.label,
                unit="row",
                disable=no_progress,
                file=self.stderr._out,
            )
            for model, count in backlog.items()
        }
        done = 0
        try:
            for model, count in rotate_encryption(batch_size=batch_size, reindex=reindex):
                bars[model].update(count)
                done += count
        except DecryptionError as exc:
            raise CommandError(
                f"A value could not be decrypted ({exc}); is its key still in "
                "PMS_ENCRYPTION_KEYS? Nothing of the failing batch was written."
            ) from exc
        finally:
            for bar in bars.values():
                bar.close()
        self.stdout.write(f"Re-encrypted {counted(done, 'row')} with key {current_key().kid}.")
