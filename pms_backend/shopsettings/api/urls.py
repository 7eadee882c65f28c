from django.urls import path

from pms_backend.shopsettings.api.views import SettingViewSet

urlpatterns = [
    path(
        "settings/",
        SettingViewSet.as_view({"get": "list", "put": "bulk_update"}),
        name="setting-list",
    ),
    path(
        "settings/<key>/",
        SettingViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="setting-detail",
    ),
]
