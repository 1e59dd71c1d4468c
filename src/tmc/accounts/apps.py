from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tmc.accounts"
    label = "accounts"
    verbose_name = "Client accounts"
