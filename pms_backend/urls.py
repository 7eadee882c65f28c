from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from pms_backend.api.views import PingView
from pms_backend.monitoring import views as monitoring

# The schema and its docs are public: a storefront developer reads them before holding a key.
public = {"authentication_classes": [], "permission_classes": [AllowAny]}

api_v1: list[URLPattern | URLResolver] = [
    path("ping/", PingView.as_view(), name="ping"),
    path("", include("catalog.api.urls")),
    path("", include("inventory.api.urls")),
    path("", include("orders.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("pms_backend.shopsettings.api.urls")),
]

# The site's root and the admin's "View site" lead to the API docs: this host serves an API
# (the staff's own entrance is /admin/), and the docs are the one page anyone may read.
admin.site.site_url = "/api/docs/"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="api-docs"), name="root"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(**public), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", **public),
        name="api-docs",
    ),
    path("health/live", monitoring.live, name="health-live"),
    path("health/ready", monitoring.ready, name="health-ready"),
    path("metrics", monitoring.metrics, name="metrics"),
]

handler400 = "pms_backend.api.problems.handler400"
handler404 = "pms_backend.api.problems.handler404"
handler500 = "pms_backend.api.problems.handler500"
