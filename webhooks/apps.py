from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Registers this app's parts into the platform's registries.
        from webhooks import monitoring, settings_registry  # noqa: F401
