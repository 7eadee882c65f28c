from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "pms_backend.staff"
    label = "staff"
    verbose_name = "Staff roles"

    def ready(self) -> None:
        from pms_backend.staff import lockout, signals  # noqa: F401 -- connect the receivers
