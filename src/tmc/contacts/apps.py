from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "tmc.contacts"
    label = "contacts"
    verbose_name = "Address book"
