from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "tmc.notifications"
    label = "notifications"
    verbose_name = "Notifications"
