from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "tmc.audit"
    label = "audit"
    verbose_name = "Activity log"
