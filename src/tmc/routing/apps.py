from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "tmc.routing"
    label = "routing"
    verbose_name = "Routing"
