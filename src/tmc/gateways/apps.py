from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "tmc.gateways"
    label = "gateways"
    verbose_name = "Gateway providers"
