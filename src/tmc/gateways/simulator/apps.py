from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    name = "tmc.gateways.simulator"
    label = "gateway_simulator"
    verbose_name = "Gateway simulator"
