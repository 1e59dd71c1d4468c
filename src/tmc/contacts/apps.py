from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "tmc.contacts"
    label = "contacts"
    verbose_name = "Address book"

    def ready(self) -> None:
        from tmc.accounts.encryption import field_context
        from tmc.accounts.keyrotation import sealed_column_register
        from tmc.contacts.models import Contact, ImportJob, OptOut

        # The same contexts the models seal and open these columns with.
        sealed_column_register(
            Contact,
            "number_sealed",
            context=lambda row: Contact.context_for(row.uid, "number"),
        )
        sealed_column_register(
            Contact,
            "details_sealed",
            context=lambda row: Contact.context_for(row.uid, "details"),
        )
        sealed_column_register(
            OptOut,
            "number_sealed",
            context=lambda row: field_context(OptOut.TABLE, "number", row.uid),
        )
        sealed_column_register(
            ImportJob,
            "file_sealed",
            context=lambda row: field_context(ImportJob.TABLE, "file", row.uid),
        )
