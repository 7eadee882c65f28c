"""Import every module of the project, and the backends its settings name by path, in the
interpreter running this (scripts/ci/production_check.sh: the production venv). A module
that imports a package only the dev extras install fails here, not in production. Prints
the failures; exits 1 if there are any.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

PACKAGES = ("pms_backend", "catalog", "inventory", "orders", "webhooks", "audit")


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.utils.module_loading import import_string

    failures = []
    count = 0
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if ".migrations." in info.name:
                continue
            count += 1
            try:
                importlib.import_module(info.name)
            except Exception as exc:
                failures.append(f"{info.name}: {type(exc).__name__}: {exc}")
    named = [
        settings.CACHES["default"]["BACKEND"],
        settings.CACHES["default"].get("OPTIONS", {}).get("CLIENT_CLASS"),
        settings.CHANNEL_LAYERS["default"]["BACKEND"],
        settings.STORAGES["staticfiles"]["BACKEND"],
        # The broker's transport, as the worker and the web processes load it.
        "kombu.transport.redis.Transport" if settings.REDIS_URL else None,
    ]
    for path in filter(None, named):
        count += 1
        try:
            import_string(path)
        except Exception as exc:
            failures.append(f"{path}: {type(exc).__name__}: {exc}")
    for failure in failures:
        print(failure)
    print(f"{count} modules and backends, {len(failures)} failed to import")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
