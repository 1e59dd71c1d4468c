from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "tmc.ops"
    label = "ops"
    verbose_name = "Operations"
