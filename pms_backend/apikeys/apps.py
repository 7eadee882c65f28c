from django.apps import AppConfig

from audit.actors import register_api_key_type


class ApiKeysConfig(AppConfig):
    name = "pms_backend.apikeys"
    label = "apikeys"
    verbose_name = "API keys"

    def ready(self) -> None:
        # Requests authenticated by a key are audited as that key's.
        register_api_key_type(self.get_model("ApiKey"))
