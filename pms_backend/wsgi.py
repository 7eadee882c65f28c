"""WSGI entry point (the production server is ASGI; this serves tools that want WSGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")

application = get_wsgi_application()
