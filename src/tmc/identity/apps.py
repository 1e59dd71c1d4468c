from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "tmc.identity"
    label = "identity"
    verbose_name = "Identity and access"
