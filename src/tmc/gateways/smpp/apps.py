from django.apps import AppConfig


class SmppConfig(AppConfig):
    name = "tmc.gateways.smpp"
    label = "gateway_smpp"
    verbose_name = "SMPP gateway"
