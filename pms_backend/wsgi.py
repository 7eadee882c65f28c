"""WSGI entry point: the HTTP processes of the production web tier (gunicorn).

Behind the tier's nginx (``PMS_BEHIND_FRONT=1``, set by ``pms_backend/server.py``) the
processes listen on a unix socket only nginx can open, and nginx has already decided who
the client is (trusting ``X-Forwarded-For`` only from ``FORWARDED_ALLOW_IPS``): its
``X-Forwarded-For`` becomes ``REMOTE_ADDR``. Anywhere else the header is ignored.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")

django_application = get_wsgi_application()

from pms_backend.monitoring.startup import log_backends  # noqa: E402 - needs Django set up

log_backends()


def behind_front(environ, start_response):
    """Take the client's address from the front (a dozen lines, so no ProxyFix dependency)."""
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded:
        environ["REMOTE_ADDR"] = forwarded.rsplit(",", 1)[-1].strip()
    # A method nginx refused to pass on (TRACE), sent as OPTIONS so the app answers it.
    refused = environ.pop("HTTP_X_PMS_METHOD", "")
    if refused:
        environ["REQUEST_METHOD"] = refused
    return django_application(environ, start_response)


application = behind_front if os.environ.get("PMS_BEHIND_FRONT") == "1" else django_application
