#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Commands that change the schema or its privileges run as the tables' owner.
OWNER_COMMANDS = ("migrate", "grant_runtime_role")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")
    # DATABASE_URL is the runtime role (docs/deployment.md); DATABASE_MIGRATION_URL, when
    # set, the owner that migrations and grants need.
    if sys.argv[1:2] and sys.argv[1] in OWNER_COMMANDS and os.environ.get("DATABASE_MIGRATION_URL"):
        os.environ["DATABASE_URL"] = os.environ["DATABASE_MIGRATION_URL"]
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A configuration mistake deserves one clear line, not a traceback.
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
