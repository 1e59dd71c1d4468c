from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "tmc.api"
    label = "api"
    verbose_name = "Integration API"

    def ready(self) -> None:
        from tmc.accounts.encryption import field_context
        from tmc.accounts.keyrotation import sealed_column_register
        from tmc.api.models import IdempotencyRecord, WebhookDelivery, WebhookEndpoint

        # A replayed response can hold a body or a full number, so it is
        # sealed like the message it describes.
        sealed_column_register(
            IdempotencyRecord,
            "response_sealed",
            context=lambda row: field_context(
                IdempotencyRecord.TABLE, "response", row.uid
            ),
        )
        # Webhook secrets, and delivery bodies, which can hold a reply's text
        # or a full number, are re-sealed with the rest of the organisation's
        # data when its key is rotated.
        sealed_column_register(
            WebhookEndpoint,
            "secret_sealed",
            context=lambda row: field_context(WebhookEndpoint.TABLE, "secret", row.uid),
        )
        sealed_column_register(
            WebhookEndpoint,
            "previous_secret_sealed",
            context=lambda row: field_context(
                WebhookEndpoint.TABLE, "previous_secret", row.uid
            ),
        )
        sealed_column_register(
            WebhookDelivery,
            "body_sealed",
            context=lambda row: field_context(WebhookDelivery.TABLE, "body", row.uid),
        )
