from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "tmc.messaging"
    label = "messaging"
    verbose_name = "Messaging"
