"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from pms_backend.monitoring.startup import log_backends  # noqa: E402
from pms_backend.websocket_routes import websocket_urlpatterns  # noqa: E402

log_backends()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The consumer checks the Origin itself: browsers (session cookies) must come from
        # our hosts; API-key clients (storefront servers) may send none.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
