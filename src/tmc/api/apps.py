from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "tmc.api"
    label = "api"
    verbose_name = "Integration API"

    def ready(self) -> None:
        from tmc.accounts.encryption import field_context
        from tmc.accounts.keyrotation import sealed_column_register
        from tmc.api.models import IdempotencyRecord

        # A replayed response can hold a body or a full number, so it is
        # sealed like the message it describes.
        sealed_column_register(
            IdempotencyRecord,
            "response_sealed",
            context=lambda row: field_context(
                IdempotencyRecord.TABLE, "response", row.uid
            ),
        )
