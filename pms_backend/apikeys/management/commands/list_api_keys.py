from django.core.management.base import BaseCommand

from pms_backend.apikeys.models import ApiKey


class Command(BaseCommand):
    help = "List API keys: prefix, name, scopes, state, creation, expiry and last use."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Include revoked keys.")

    def handle(self, *args, **options):
        keys = ApiKey.objects.order_by("created_at")
        if not options["all"]:
            keys = keys.filter(revoked_at__isnull=True)
        rows = [("PREFIX", "NAME", "STATE", "SCOPES", "CREATED", "EXPIRES", "LAST USED")]
        for key in keys:
            if key.revoked_at:
                state = "revoked"
            elif not key.is_usable:
                state = "expired"
            else:
                state = "active"
            rows.append(
                (
                    key.prefix,
                    key.name,
                    state,
                    ",".join(key.scopes),
                    f"{key.created_at:%Y-%m-%d %H:%M}",
                    f"{key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else "never",
                    f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            )
        if len(rows) == 1:
            self.stderr.write("No keys. Create one with generate_api_key.")
