from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.actors import Actor
from pms_backend.apikeys.scopes import ALL_SCOPES, PRESETS
from pms_backend.apikeys.services import api_key_create
from pms_backend.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create an API key and print it once, alone on the last line of stdout. "
        f"Scopes: {', '.join(ALL_SCOPES)}; presets: {', '.join(PRESETS)}."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Who or what the key is for.")
        parser.add_argument(
            "--scopes",
            required=True,
            help="Comma-separated scopes or presets, e.g. storefront or catalog:read,orders:read.",
        )
        parser.add_argument(
            "--expires-in-days", type=int, default=None, help="Expire the key after D days."
        )

    def handle(self, *args, name, scopes, expires_in_days, **options):
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise CommandError("--expires-in-days must be from 1 to 3650.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            key, raw = api_key_create(
                name=name,
                scopes=scopes.split(","),
                expires_at=expires_at,
                actor=Actor.system("generate_api_key"),
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stderr.write(
            f"Created key {key.name!r} (prefix {key.prefix}) with scopes {', '.join(key.scopes)}"
            + (f", expiring {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "")
            + ". Store it now: it cannot be shown again."
        )
        self.stdout.write(raw)
