from django.apps import AppConfig


class EncryptionConfig(AppConfig):
    name = "pms_backend.encryption"
    label = "encryption"
    verbose_name = "Field encryption"
