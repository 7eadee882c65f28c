from django.apps import AppConfig

from pms_backend.events.registry import OutboxSubscriber, register_subscriber


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Models (which services use) are importable only once apps are ready; tasks
        # registers the Celery tasks services queue by name; monitoring and settings_registry
        # register into the platform's registries.
        from webhooks import monitoring, services, settings_registry, tasks  # noqa: F401

        register_subscriber(
            OutboxSubscriber(
                name="webhooks",
                take=services.deliveries_for_dispatch,
                holds=services.events_still_owed,
            )
        )
