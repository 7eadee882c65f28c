from django.core.management.base import BaseCommand, CommandError

from audit.actors import Actor
from pms_backend.apikeys.services import api_key_revoke
from pms_backend.errors import DomainError


class Command(BaseCommand):
    help = "Revoke the API key with PREFIX (as list_api_keys shows it); effective at once."

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="The key's prefix, or the whole key.")

    def handle(self, *args, prefix, **options):
        if prefix.startswith("pms_"):
            prefix = prefix.split("_", 2)[1] if prefix.count("_") >= 2 else prefix
        try:
            key = api_key_revoke(prefix=prefix, actor=Actor.system("revoke_api_key"))
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"Revoked {key.name!r} (prefix {key.prefix}).")
