from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "tmc.identity"
    label = "identity"
    verbose_name = "Identity and access"

    def ready(self) -> None:
        from tmc.accounts.encryption import master_sealed_register
        from tmc.identity.totp import totp_secrets_reseal

        master_sealed_register(totp_secrets_reseal)
