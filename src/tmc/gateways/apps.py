from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "tmc.gateways"
    label = "gateways"
    verbose_name = "Gateway providers"

    def ready(self) -> None:
        from tmc.accounts.encryption import master_sealed_register
        from tmc.gateways.inbound_parts import inbound_parts_reseal
        from tmc.gateways.providers import credentials_reseal

        master_sealed_register(credentials_reseal)
        master_sealed_register(inbound_parts_reseal)
