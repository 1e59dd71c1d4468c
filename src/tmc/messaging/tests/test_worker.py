"""The real worker: tasks cross the configured queue (SQLite or Redis)."""

from __future__ import annotations

from typing import Any

from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.testing import Tenant, wait_until


def _status(message: Message) -> str:
    message.refresh_from_db()
    return message.status


def test_the_worker_submits_and_the_report_arrives_later(
    huey_worker: None, tenant_a: Tenant, settings: Any
) -> None:
    settings.TMC_SIMULATOR_REPORT_DELAY = 1.5

    message = message_send(
        user=tenant_a.user, recipient="07400 123456", body="Worker test"
    )

    assert message.status == Message.Status.QUEUED
    wait_until(lambda: _status(message) == Message.Status.SUBMITTED)
    wait_until(lambda: _status(message) == Message.Status.DELIVERED)
    assert message.submitted_at is not None
    assert message.completed_at is not None
    assert message.completed_at > message.submitted_at


def test_many_messages_are_each_sent_once(huey_worker: None, tenant_a: Tenant) -> None:
    messages = [
        message_send(user=tenant_a.user, recipient="07400 123456", body=f"n{i}")
        for i in range(20)
    ]

    wait_until(
        lambda: Message.objects.filter(status=Message.Status.DELIVERED).count() == 20
    )
    providers = {m.provider_message_id for m in Message.objects.all()}
    assert len(providers) == len(messages)
