"""The framework's ceiling: the fastest a DRF page can be served on this machine.

A constant JSON page of 20 products (the shape of ``GET /api/v1/products/``) from a DRF
``APIView``, with a minimal middleware list, no database, no cache, no authentication. The
benchmarks serve it with gunicorn (sync WSGI, the project's worker count): every project
endpoint is measured against it in the same run. ``application`` is the WSGI entry point,
``asgi_application`` the ASGI one (to measure other servers on the same page).

Only Django and DRF; nothing of the project.
"""

from __future__ import annotations

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="ceiling-app-" + "x" * 50,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    USE_TZ=True,
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "rest_framework",
    ],
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
    ],
    DATABASES={},
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": [],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "UNAUTHENTICATED_USER": None,
    },
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

PAGE = {
    "count": 1000,
    "next": "http://127.0.0.1/api/v1/products/?page=2&page_size=20",
    "previous": None,
    "results": [
        {
            "id": n,
            "sku": f"DEMO1-{n:07d}",
            "name": f"Organic Linen Oxford Shirt {n}",
            "slug": f"organic-linen-oxford-shirt-{n}",
            "description": "Organic Linen Oxford Shirt in navy. Part of the demo catalog.",
            "price": "91.99",
            "currency": "EUR",
            "category": 3,
            "attributes": {"colour": "Navy", "size": "XS", "weight_g": 4574},
            "status": "published",
            "published_at": "2025-12-14T10:46:10.558852Z",
            "created_at": "2026-11-26T10:46:10.623393Z",
            "updated_at": "2026-11-26T10:46:10.623398Z",
        }
        for n in range(1, 21)
    ],
}


class ConstantPage(APIView):
    def get(self, request):
        return Response(PAGE)


urlpatterns = [path("api/v1/products/", ConstantPage.as_view())]

application = get_wsgi_application()
asgi_application = get_asgi_application()
