"""``tmc gateway test`` against the local SMSC, through a staff-set-up provider."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tmc.gateways.models import GatewayProvider
from tmc.gateways.providers import provider_save
from tmc.gateways.smpp.peer import LocalSmsc
from tmc.gateways.smpp.tests.conftest import BindFactory
from tmc.messaging.models import Message
from tmc.testing import make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


def _carrier(smsc: LocalSmsc, smpp_bind: BindFactory) -> None:
    provider_save(
        provider=None,
        name="carrier-a",
        kind=GatewayProvider.Kind.SMPP,
        enabled=True,
        throughput=50,
        settings={"host": "127.0.0.1", "port": smsc.port, "system_id": "tmc"},
        secrets={"password": "secret"},
    )
    smpp_bind(gateway="carrier-a")


def _test(*args: str) -> str:
    out = StringIO()
    call_command("gateway", "test", *args, stdout=out)
    return out.getvalue()


def test_a_test_text_goes_through_the_named_provider_and_is_delivered(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    make_tenant("Acme")
    _carrier(smsc, smpp_bind)

    out = _test(
        "carrier-a", "--to", "07400 123456", "--text", "Ping", "--timeout", "10"
    )

    assert "Delivered after" in out
    assert "+44 7400 1•••56" in out
    assert "7400 123456" not in out
    message = Message.objects.get()
    assert (message.gateway, message.status, message.credits) == (
        "carrier-a",
        Message.Status.DELIVERED,
        0,
    )
    [submit] = smsc.state()["submits"]
    assert submit["destination"] == "447400123456"


def test_a_refused_test_text_says_why(smsc: LocalSmsc, smpp_bind: BindFactory) -> None:
    make_tenant("Acme")
    _carrier(smsc, smpp_bind)
    smsc.configure(refuse={"447400123456": 0x0B})

    with pytest.raises(CommandError, match="Not delivered: The SMSC refused"):
        _test("carrier-a", "--to", "07400 123456", "--timeout", "10")

    assert Message.objects.get().status == Message.Status.FAILED


def test_no_receipt_within_the_timeout_is_reported(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    make_tenant("Acme")
    _carrier(smsc, smpp_bind)
    smsc.configure(receipts=False)

    with pytest.raises(CommandError, match=r"No delivery report within 1 s"):
        _test("carrier-a", "--to", "07400 123456", "--timeout", "1")


def test_bad_arguments_are_explained_and_send_nothing(smsc: LocalSmsc) -> None:
    make_tenant("Acme")

    with pytest.raises(CommandError, match="names no gateway adapter"):
        _test("carrier-z", "--to", "07400 123456")
    with pytest.raises(CommandError, match="recipient"):
        _test("simulator", "--to", "12")
    with pytest.raises(CommandError, match="--timeout must be more than 0"):
        _test("simulator", "--to", "07400 123456", "--timeout", "0")
    make_tenant("Other")
    with pytest.raises(CommandError, match="--org"):
        _test("simulator", "--to", "07400 123456")
    with pytest.raises(CommandError, match="No organisation 'Nobody'"):
        _test("simulator", "--to", "07400 123456", "--org", "Nobody")

    assert not Message.objects.exists()
