"""The SMPP adapter end to end, against a real SMSC (node-smpp) on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import pytest

from tmc.gateways.smpp.bind import BindConfig, SmppBind
from tmc.gateways.smpp.codec import gsm7_unpack, split_udh
from tmc.gateways.smpp.models import SmppPart
from tmc.gateways.smpp.peer import LocalSmsc
from tmc.gateways.smpp.tests.conftest import BindFactory
from tmc.lib.segments import GSM_CODEC, count_segments
from tmc.messaging.models import InboundMessage, Message
from tmc.messaging.services import message_send
from tmc.testing import Tenant, make_tenant, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

RECIPIENT = "+447400123456"
OUR_NUMBER = "447700900123"


def _send(tenant: Tenant, body: str, recipient: str = RECIPIENT) -> Message:
    return message_send(user=tenant.user, recipient=recipient, body=body)


def _status(message: Message) -> str:
    message.refresh_from_db()
    return message.status


def _wait_status(message: Message, status: str, timeout: float = 10) -> None:
    wait_until(lambda: _status(message) == status, timeout=timeout)


def _accepted(smsc: LocalSmsc) -> list[dict[str, object]]:
    return [s for s in smsc.state()["submits"] if s["status"] == 0]


def _texts(submits: list[dict[str, object]], *, packed: bool = False) -> list[str]:
    """The text each submit_sm carried, decoded as a handset would."""
    texts = []
    for submit in submits:
        raw = bytes.fromhex(str(submit["shortMessage"]))
        payload = split_udh(raw)[1] if int(str(submit["esmClass"])) & 0x40 else raw
        if submit["dataCoding"] == 8:
            texts.append(payload.decode("utf-16-be"))
        elif packed:
            septets = gsm7_unpack(
                payload, fill_bits=1 if len(raw) > len(payload) else 0
            )
            texts.append(septets.rstrip(b"\x00").decode(GSM_CODEC))
        else:
            texts.append(payload.decode(GSM_CODEC))
    return texts


def test_a_message_is_bound_submitted_and_delivered(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    tenant = make_tenant("Acme")
    smpp_bind(system_id="acme-esme", password="pw-1", system_type="VMA")

    message = _send(tenant, "Your table is ready")

    _wait_status(message, Message.Status.DELIVERED)
    state = smsc.state()
    assert state["binds"] == [
        {
            "systemId": "acme-esme",
            "password": "pw-1",
            "systemType": "VMA",
            "interfaceVersion": 0x34,
        }
    ]
    [submit] = state["submits"]
    assert submit["destination"] == RECIPIENT.lstrip("+")
    assert submit["source"] == "AcmeAlerts"
    assert submit["registeredDelivery"] == 1
    assert _texts([submit]) == ["Your table is ready"]
    part = SmppPart.objects.get(message=message)
    assert part.provider_message_id == submit["messageId"]
    assert part.state == SmppPart.State.DELIVERED
    wait_until(lambda: len(smsc.state()["deliverResps"]) == 1)
    assert smsc.state()["deliverResps"][0]["status"] == 0


def test_the_window_keeps_that_many_submits_outstanding(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    tenant = make_tenant("Acme")
    smsc.configure(submitDelayMs=300, receipts=False)
    messages = [_send(tenant, f"Reminder {n}") for n in range(12)]

    smpp_bind(window=5)

    for message in messages:
        _wait_status(message, Message.Status.SUBMITTED)
    state = smsc.state()
    assert state["maxOutstanding"] == 5
    assert len(state["submits"]) == 12


def test_throttled_submits_slow_down_and_go_again_in_order(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    """Parts throttled are resent before anything queued after them."""
    tenant = make_tenant("Acme")
    smsc.configure(throttle=3)
    messages = [_send(tenant, f"Notice {n}") for n in range(10)]

    bind = smpp_bind(window=5)

    for message in messages:
        _wait_status(message, Message.Status.DELIVERED)
    assert bind.stats.throttled == 3
    state = smsc.state()
    assert [s["status"] for s in state["submits"][:3]] == [88, 88, 88]
    accepted = [str(t) for t in _texts(_accepted(smsc))]
    # Each text accepted exactly once.
    assert sorted(accepted) == sorted(f"Notice {n}" for n in range(10))
    # The throttled three went again, in their order, before the five that
    # were still queued when the throttle came.
    later = [t for t in accepted if t not in {"Notice 3", "Notice 4"}]
    assert later == [f"Notice {n}" for n in (0, 1, 2, 5, 6, 7, 8, 9)]
    ids = SmppPart.objects.values_list("provider_message_id", flat=True)
    assert sorted(ids) == sorted(str(s["messageId"]) for s in _accepted(smsc))


@pytest.mark.parametrize("packed", [False, True])
def test_a_long_gsm7_message_goes_in_ordered_parts_keeping_escape_pairs(
    smsc: LocalSmsc, smpp_bind: BindFactory, packed: bool
) -> None:
    tenant = make_tenant("Acme")
    # The euro sign (an escape pair) falls across the 153-septet boundary.
    body = "a" * 152 + "€" + "b" * 150 + " [end]"
    segments = count_segments(body)
    assert segments.parts == 3
    smpp_bind(gsm7_packed=packed)

    message = _send(tenant, body)

    _wait_status(message, Message.Status.DELIVERED)
    submits = smsc.state()["submits"]
    assert [s["dataCoding"] for s in submits] == [0, 0, 0]
    assert [s["esmClass"] for s in submits] == [0x40, 0x40, 0x40]
    headers = [bytes.fromhex(str(s["shortMessage"]))[:6] for s in submits]
    reference = message.pk % 256
    assert headers == [bytes([5, 0, 3, reference, 3, n]) for n in (1, 2, 3)]
    texts = _texts(submits, packed=packed)
    assert texts == list(segments.part_texts)
    assert texts[0].endswith("a")
    assert texts[1].startswith("€")
    assert "".join(texts) == body


def test_a_long_ucs2_message_keeps_surrogate_pairs_whole(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    tenant = make_tenant("Acme")
    body = "ж" * 66 + "🙂" + "й" * 40
    smpp_bind()

    message = _send(tenant, body)

    _wait_status(message, Message.Status.DELIVERED)
    submits = smsc.state()["submits"]
    assert [s["dataCoding"] for s in submits] == [8, 8]
    texts = _texts(submits)
    assert texts == list(count_segments(body).part_texts)
    assert texts[1].startswith("🙂")


@pytest.mark.parametrize(
    ("id_base", "text_base"), [("hex", "dec"), ("dec", "hex"), ("hex", "same")]
)
def test_receipts_match_ids_given_in_another_base(
    smsc: LocalSmsc, smpp_bind: BindFactory, id_base: str, text_base: str
) -> None:
    """Without the receipted_message_id TLV only the text's id names the part."""
    tenant = make_tenant("Acme")
    smsc.configure(idBase=id_base, receiptTextIdBase=text_base, receiptTlv=False)
    smpp_bind()

    messages = [_send(tenant, f"Code {n}") for n in range(3)]

    for message in messages:
        _wait_status(message, Message.Status.DELIVERED)


def test_a_receipt_before_the_submit_response_is_not_lost(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    tenant = make_tenant("Acme")
    smsc.configure(receiptBeforeResp=True)
    smpp_bind()

    message = _send(tenant, "Early report")

    _wait_status(message, Message.Status.DELIVERED)
    assert SmppPart.objects.get(message=message).state == SmppPart.State.DELIVERED


def test_a_multipart_message_fails_when_one_part_is_not_delivered(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    tenant = make_tenant("Acme")
    smsc.configure(failSegments=[2])
    smpp_bind()

    message = _send(tenant, "x" * 400)

    _wait_status(message, Message.Status.FAILED)
    message.refresh_from_db()
    assert message.failure_reason.startswith("Part 2 of 3 not delivered")
    wait_until(
        lambda: (
            sorted(
                SmppPart.objects.filter(message=message).values_list("state", flat=True)
            )
            == ["delivered", "delivered", "failed"]
        )
    )


def test_a_refused_submit_fails_the_message_with_the_code(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    tenant = make_tenant("Acme")
    smsc.configure(refuse={RECIPIENT.lstrip("+"): 0x0B})
    smpp_bind()

    message = _send(tenant, "y" * 300)

    _wait_status(message, Message.Status.FAILED)
    message.refresh_from_db()
    assert "0x0000000B" in message.failure_reason
    assert "part 1 of 2" in message.failure_reason
    part = SmppPart.objects.get(message=message, sequence=1)
    assert part.command_status == 0x0B


def test_inbound_texts_single_and_concatenated_arrive_whole(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    smpp_bind()

    smsc.mo(source="447400555111", destination=OUR_NUMBER, segments=["Hello there"])
    smsc.mo(
        source="447400555222",
        destination=OUR_NUMBER,
        segments=["First half, ", "second half."],
        concat="udh",
        ref=200,
    )
    smsc.mo(
        source="447400555333",
        destination=OUR_NUMBER,
        segments=["Привет, ", "мир 🙂"],
        coding="ucs2",
        concat="sar",
        ref=4000,
    )

    wait_until(lambda: InboundMessage.objects.count() == 3)
    received = {m.sender: m for m in InboundMessage.objects.all()}
    assert received["+447400555111"].body == "Hello there"
    assert received["+447400555222"].body == "First half, second half."
    assert received["+447400555333"].body == "Привет, мир 🙂"
    assert received["+447400555111"].recipient == f"+{OUR_NUMBER}"
    wait_until(lambda: len(smsc.state()["deliverResps"]) == 5)
    assert {r["status"] for r in smsc.state()["deliverResps"]} == {0}


def test_a_bind_lost_mid_window_rebinds_and_leaves_the_unanswered_for_reconciliation(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    tenant = make_tenant("Acme")
    smsc.configure(submitDelayMs=400, dropAfter=4)
    messages = [_send(tenant, f"Batch {n}") for n in range(8)]

    bind = smpp_bind(window=4)

    for message in messages[4:]:
        _wait_status(message, Message.Status.DELIVERED)
    assert bind.stats.binds == 2
    assert len(smsc.state()["binds"]) == 2
    for message in messages[:4]:
        assert _status(message) == Message.Status.SUBMITTING
        part = SmppPart.objects.get(message=message)
        assert part.state == SmppPart.State.UNANSWERED
        assert "Bind lost" in part.detail
    # Exactly once at the SMSC: nothing was sent twice.
    texts = _texts(smsc.state()["submits"])
    assert sorted(texts) == sorted(f"Batch {n}" for n in range(8))


def test_stopping_unbinds_cleanly_and_idle_binds_enquire(
    smsc: LocalSmsc, transactional_db: None
) -> None:
    bind = SmppBind(
        BindConfig(
            host="127.0.0.1",
            port=smsc.port,
            system_id="tmc",
            password="secret",
            enquire_link_seconds=0.5,
        )
    )
    stop = threading.Event()
    thread = threading.Thread(target=bind.run, args=(stop,))
    thread.start()
    wait_until(bind.bound.is_set)

    time.sleep(1.3)
    stop.set()
    thread.join(timeout=10)

    state = smsc.state()
    assert state["enquireLinks"] >= 1
    assert state["unbinds"] == 1
    assert state["bound"] == 0


def test_a_long_inbound_text_split_by_a_restart_arrives_whole_once(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    from tmc.gateways.models import InboundPart

    parts = ["Part one, ", "part two, ", "part three."]

    def send(only: list[int]) -> None:
        smsc.mo(
            source="447400555444",
            destination=OUR_NUMBER,
            segments=parts,
            ref=9,
            only=only,
        )

    first = SmppBind(
        BindConfig(
            host="127.0.0.1",
            port=smsc.port,
            system_id="tmc",
            password="secret",
            name="before-restart",
            poll_seconds=0.02,
        )
    )
    stop = threading.Event()
    thread = threading.Thread(target=first.run, args=(stop,), daemon=True)
    thread.start()
    wait_until(first.bound.is_set, timeout=10)
    send([3])
    send([1])
    wait_until(lambda: len(smsc.state()["deliverResps"]) == 2)
    stop.set()
    thread.join(timeout=10)
    assert InboundPart.objects.count() == 2
    stored = " ".join(InboundPart.objects.values_list("sealed_text", flat=True))
    assert "Part one" not in stored

    # Another worker binds and gets the missing part, and a repeat of one.
    smpp_bind()
    send([2, 1])

    wait_until(lambda: InboundMessage.objects.count() == 1)
    wait_until(lambda: len(smsc.state()["deliverResps"]) == 4)
    assert InboundMessage.objects.get().body == "Part one, part two, part three."
    assert not InboundPart.objects.exists()
    assert {r["status"] for r in smsc.state()["deliverResps"]} == {0}
