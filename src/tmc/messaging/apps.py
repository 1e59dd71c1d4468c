from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "tmc.messaging"
    label = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from tmc.accounts.encryption import field_context
        from tmc.accounts.keyrotation import sealed_column_register
        from tmc.messaging.models import (
            Campaign,
            InboundMessage,
            Message,
            MessageTemplate,
            Schedule,
            VerifiedNumber,
        )

        # The same contexts the models seal and open these columns with.
        # Replies kept with no organisation are under the platform's keys,
        # which an organisation's rotation does not touch.
        sealed_column_register(
            Message,
            "recipient_sealed",
            context=lambda row: field_context(Message.TABLE, "recipient", row.uid),
        )
        sealed_column_register(
            Message,
            "body_sealed",
            context=lambda row: field_context(Message.TABLE, "body", row.uid),
        )
        sealed_column_register(
            InboundMessage,
            "sender_sealed",
            context=lambda row: field_context(InboundMessage.TABLE, "sender", row.uid),
        )
        sealed_column_register(
            InboundMessage,
            "body_sealed",
            context=lambda row: field_context(InboundMessage.TABLE, "body", row.uid),
        )
        sealed_column_register(
            MessageTemplate,
            "body_sealed",
            context=lambda row: field_context(MessageTemplate.TABLE, "body", row.uid),
        )
        sealed_column_register(
            Campaign,
            "body_sealed",
            context=lambda row: field_context(Campaign.TABLE, "body", row.uid),
        )
        sealed_column_register(
            Schedule,
            "numbers_sealed",
            context=lambda row: field_context(Schedule.TABLE, "numbers", row.uid),
        )
        sealed_column_register(
            Schedule,
            "body_sealed",
            context=lambda row: field_context(Schedule.TABLE, "body", row.uid),
        )
        sealed_column_register(
            VerifiedNumber,
            "number_sealed",
            context=lambda row: field_context(VerifiedNumber.TABLE, "number", row.uid),
        )
