from django.apps import AppConfig


class BoomerangConfig(AppConfig):
    name = "tmc.boomerang"
    label = "boomerang"
    verbose_name = "Boomerang replies"
