from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "tmc.staff"
    label = "staff"
    verbose_name = "Provider staff"
