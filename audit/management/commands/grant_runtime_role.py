import os

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.database_roles import RoleError, grant_runtime_role


class Command(BaseCommand):
    help = (
        "Grant a PostgreSQL role what the application needs at run time — read and write "
        "the shop's tables (now and those later migrations create), append to the audit "
        "log — and nothing that could erase the audit log. Run it as the tables' owner: "
        "manage.py connects with DATABASE_MIGRATION_URL for this command. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="The runtime role (DATABASE_URL's user).")
        parser.add_argument(
            "--create",
            action="store_true",
            help="Create the role (LOGIN) when it does not exist; needs CREATEROLE.",
        )
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="Set the role's password from this environment variable (never argv).",
        )

    def handle(self, *args, role: str, create: bool, password_env: str | None, **options):
        password = ""
        if password_env:
            password = os.environ.get(password_env, "")
            if not password:
                raise CommandError(f"{password_env} is not set or empty.")
        try:
            with transaction.atomic():
                statements = grant_runtime_role(role, create=create, password=password)
        except RoleError as exc:
            raise CommandError(str(exc)) from exc
        for statement in statements:
            self.stdout.write(f"  {statement}")
        self.stdout.write(self.style.SUCCESS(f"Runtime role {role} granted."))
