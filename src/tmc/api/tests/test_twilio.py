"""The Twilio-compatible subset, driven by Twilio's own Python SDK.

The SDK is pointed at a live TMC server on 127.0.0.1 by its base URL, with
an Account SID of the client's choosing and a TMC API key as the token.
"""

from __future__ import annotations

from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from tmc.api.services import api_key_create
from tmc.messaging.models import Message
from tmc.testing import Tenant

ACCOUNT = "ACtmc0000000000000000000000000001"


@pytest.fixture
def twilio_for(live_server: Any, settings: Any) -> Any:
    settings.ALLOWED_HOSTS = ["*"]

    def make(user: Any, scopes: list[str] | None = None) -> Client:
        created = api_key_create(
            actor=None,
            user=user,
            name="Twilio",
            scopes=scopes or ["send", "read_messages"],
        )
        client = Client(ACCOUNT, created.raw)
        client.api.base_url = live_server.url
        return client

    return make


@pytest.mark.django_db(transaction=True)
def test_the_sdk_sends_and_fetches_a_text(tenant_a: Tenant, twilio_for: Any) -> None:
    client = twilio_for(tenant_a.controller)

    sent = client.messages.create(
        to="+447400123456", from_="+15005550006", body="Hello from the SDK"
    )
    fetched = client.messages(sent.sid).fetch()

    message = Message.objects.get()
    assert sent.sid == "SM" + message.uid.hex
    # Tests run the queue at once: the simulator may have delivered it already.
    assert sent.status in {"queued", "sending", "sent", "delivered"}
    assert (sent.to, sent.body, sent.num_segments) == (
        "+447400123456",
        "Hello from the SDK",
        "1",
    )
    # A Twilio number is no sender here: the account's default is used.
    assert sent.from_ == message.sender
    assert fetched.sid == sent.sid
    assert fetched.account_sid == ACCOUNT
    assert fetched.date_created is not None


@pytest.mark.django_db(transaction=True)
def test_errors_reach_the_sdk_as_twilio_exceptions(
    tenant_a: Tenant, tenant_b: Tenant, twilio_for: Any
) -> None:
    client = twilio_for(tenant_a.controller)
    theirs = twilio_for(tenant_b.controller).messages.create(
        to="+447400999111", body="Theirs"
    )

    with pytest.raises(TwilioRestException) as bad_number:
        client.messages.create(to="12", body="Hi")
    with pytest.raises(TwilioRestException) as not_ours:
        client.messages(theirs.sid).fetch()
    with pytest.raises(TwilioRestException) as no_scope:
        twilio_for(tenant_a.controller, scopes=["read_messages"]).messages.create(
            to="+447400123456", body="Hi"
        )

    assert (bad_number.value.status, bad_number.value.code) == (400, 21211)
    assert (not_ours.value.status, not_ours.value.code) == (404, 20404)
    assert (no_scope.value.status, no_scope.value.code) == (403, 20003)
    assert Message.objects.filter(organisation=tenant_a.organisation).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_wrong_key_is_401(db: None, live_server: Any) -> None:
    client = Client(ACCOUNT, "tmc_not_a_key")
    client.api.base_url = live_server.url

    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to="+447400123456", body="Hi")

    assert (refused.value.status, refused.value.code) == (401, 20003)
