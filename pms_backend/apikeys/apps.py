from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "pms_backend.apikeys"
    label = "apikeys"
    verbose_name = "API keys"
