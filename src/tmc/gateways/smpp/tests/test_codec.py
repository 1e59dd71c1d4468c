"""What goes into a short_message and what is read out of receipts."""

from __future__ import annotations

import pytest

from tmc.gateways.smpp.codec import (
    Concat,
    ReceiptState,
    concat_udh,
    decode_text,
    encode_part,
    gsm7_pack,
    gsm7_unpack,
    id_key,
    id_other_base,
    receipt_parse,
    split_udh,
)
from tmc.lib.segments import GSM_CODEC, Encoding


def test_packing_follows_the_standard_example() -> None:
    # 3GPP TS 23.038: "hellohello" packs to these nine octets.
    assert gsm7_pack("hellohello".encode(GSM_CODEC)).hex() == "e8329bfd4697d9ec37"


@pytest.mark.parametrize("fill_bits", [0, 1, 6])
def test_unpacking_undoes_packing_after_a_header(fill_bits: int) -> None:
    septets = "Price: 5€ {ok}".encode(GSM_CODEC)
    packed = gsm7_pack(septets, fill_bits=fill_bits)
    assert gsm7_unpack(packed, fill_bits=fill_bits)[: len(septets)] == septets


def test_a_packed_part_starts_its_septets_after_one_fill_bit() -> None:
    part = encode_part(
        "hi", encoding=Encoding.GSM7, sequence=1, total=2, reference=9, packed=True
    )
    assert part.short_message[:6] == concat_udh(9, 2, 1)
    assert gsm7_unpack(part.short_message[6:], fill_bits=1)[:2] == b"hi"
    assert part.esm_class == 0x40
    assert part.data_coding == 0


def test_a_single_ucs2_part_has_no_header() -> None:
    part = encode_part(
        "Ж🙂", encoding=Encoding.UCS2, sequence=1, total=1, reference=0, packed=False
    )
    assert part.short_message == "Ж🙂".encode("utf-16-be")
    assert (part.esm_class, part.data_coding) == (0, 8)


def test_headers_with_8_and_16_bit_references_are_read() -> None:
    assert split_udh(bytes([5, 0, 3, 7, 2, 1]) + b"ab") == (Concat(7, 2, 1), b"ab")
    sixteen = bytes([6, 8, 4, 0x01, 0x02, 3, 2]) + b"cd"
    assert split_udh(sixteen) == (Concat(0x0102, 3, 2), b"cd")


def test_inbound_codings_are_decoded() -> None:
    assert decode_text("£5 @ home".encode(GSM_CODEC), 0) == "£5 @ home"
    assert decode_text("é".encode("latin-1"), 3) == "é"
    assert decode_text("мир".encode("utf-16-be"), 8) == "мир"


def test_a_receipt_text_is_read() -> None:
    receipt = receipt_parse(
        "id:0000012345 sub:001 dlvrd:001 submit date:2601011200 "
        "done date:2601011201 stat:DELIVRD err:000 Text:Hello"
    )
    assert receipt is not None
    assert receipt.ids == ("0000012345",)
    assert receipt.state is ReceiptState.DELIVERED
    assert (receipt.stat, receipt.error) == ("DELIVRD", "000")


def test_receipt_tlvs_win_over_the_text() -> None:
    receipt = receipt_parse(
        "id:99 stat:DELIVRD err:000", receipted_message_id="63", message_state=5
    )
    assert receipt is not None
    assert receipt.ids == ("63", "99")
    assert receipt.state is ReceiptState.FAILED
    assert receipt.stat == "UNDELIV"


def test_a_receipt_without_an_id_is_not_a_receipt() -> None:
    assert receipt_parse("stat:DELIVRD") is None


@pytest.mark.parametrize(
    ("given", "other"),
    [("12345", "3039"), ("00012345", "3039"), ("1A2B", "6699"), ("abc-1", "")],
)
def test_ids_are_also_known_in_the_other_base(given: str, other: str) -> None:
    assert id_other_base(given) == other
    assert id_key("0001A2B") == "1a2b"
