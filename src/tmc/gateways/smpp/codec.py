"""What SMPP 3.4 puts in a short_message, and what comes back in a deliver_sm.

Pure functions, no Django and no socket: the bind worker and the tests share
them. smpplib carries the PDUs; the text inside them is encoded here so that
part boundaries are the platform's own (``count_segments``), which never split
a GSM-7 escape pair or a UTF-16 surrogate pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from tmc.lib.segments import GSM_CODEC, Encoding

DATA_CODING_GSM7 = 0x00
DATA_CODING_LATIN1 = 0x03
DATA_CODING_UCS2 = 0x08

ESM_CLASS_UDHI = 0x40
# Bits 2 to 5 of esm_class say what kind of deliver_sm this is (SMPP 3.4,
# 5.2.12): 0x04 is an SMSC delivery receipt; 0x08, 0x10 and 0x20 are other
# acknowledgements. Anything else is a text from a handset.
ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_RECEIPT = 0x04

IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08


@dataclass(frozen=True)
class EncodedPart:
    short_message: bytes
    data_coding: int
    esm_class: int


def gsm7_pack(septets: bytes, *, fill_bits: int = 0) -> bytes:
    """Pack 7-bit septets into octets, LSB first (3GPP TS 23.038, 6.1.2.1).

    ``fill_bits`` leading zero bits align the first septet to a septet
    boundary after a user data header.
    """
    value = 0
    bits = fill_bits
    out = bytearray()
    for septet in septets:
        value |= (septet & 0x7F) << bits
        bits += 7
        while bits >= 8:
            out.append(value & 0xFF)
            value >>= 8
            bits -= 8
    if bits:
        out.append(value & 0xFF)
    return bytes(out)


def gsm7_unpack(octets: bytes, *, fill_bits: int = 0) -> bytes:
    """The inverse of ``gsm7_pack``."""
    total_bits = len(octets) * 8 - fill_bits
    count = total_bits // 7
    number = int.from_bytes(octets, "little") >> fill_bits
    return bytes((number >> (7 * index)) & 0x7F for index in range(count))


def concat_udh(reference: int, total: int, sequence: int) -> bytes:
    """A user data header for part ``sequence`` of ``total``, 8-bit reference."""
    assert 0 <= reference <= 0xFF
    assert 1 <= sequence <= total <= 0xFF
    return bytes([0x05, IEI_CONCAT_8BIT, 0x03, reference, total, sequence])


def encode_part(
    text: str,
    *,
    encoding: Encoding,
    sequence: int,
    total: int,
    reference: int,
    packed: bool,
) -> EncodedPart:
    """Encode one part of a message, with a concatenation header if needed.

    GSM-7 goes as data_coding 0, one septet per octet unless ``packed`` (some
    SMSCs want the air-interface packing); anything else as UCS-2 (8).
    """
    if encoding is Encoding.GSM7:
        payload = text.encode(GSM_CODEC)
        data_coding = DATA_CODING_GSM7
    else:
        payload = text.encode("utf-16-be")
        data_coding = DATA_CODING_UCS2

    udh = concat_udh(reference, total, sequence) if total > 1 else b""
    if encoding is Encoding.GSM7 and packed:
        # The septets start at the next septet boundary after the header.
        fill_bits = (7 - (len(udh) * 8) % 7) % 7
        payload = gsm7_pack(payload, fill_bits=fill_bits)
    esm_class = ESM_CLASS_UDHI if udh else 0
    return EncodedPart(
        short_message=udh + payload, data_coding=data_coding, esm_class=esm_class
    )


def decode_text(payload: bytes, data_coding: int) -> str:
    """Decode the text of an inbound part (after any header is taken off).

    SMSCs hand GSM-7 over SMPP one septet per octet; Latin-1 and UCS-2 are
    the other codings handsets' texts arrive in.
    """
    coding = data_coding & 0x0F if data_coding < 0xC0 else data_coding
    if coding == DATA_CODING_UCS2:
        return payload.decode("utf-16-be", errors="replace")
    if coding == DATA_CODING_LATIN1:
        return payload.decode("latin-1")
    if coding in (DATA_CODING_GSM7, 0x01):
        return payload.decode(GSM_CODEC, errors="replace")
    return payload.decode("latin-1")


@dataclass(frozen=True)
class Concat:
    reference: int
    total: int
    sequence: int


def split_udh(short_message: bytes) -> tuple[Concat | None, bytes]:
    """Take a user data header off; return its concatenation info if any."""
    if not short_message:
        return None, b""
    length = short_message[0]
    header, rest = short_message[1 : 1 + length], short_message[1 + length :]
    concat = None
    index = 0
    while index + 2 <= len(header):
        iei, size = header[index], header[index + 1]
        value = header[index + 2 : index + 2 + size]
        if iei == IEI_CONCAT_8BIT and size == 3:
            concat = Concat(reference=value[0], total=value[1], sequence=value[2])
        elif iei == IEI_CONCAT_16BIT and size == 4:
            concat = Concat(
                reference=int.from_bytes(value[:2], "big"),
                total=value[2],
                sequence=value[3],
            )
        index += 2 + size
    return concat, rest


# --- delivery receipts ------------------------------------------------------


class ReceiptState(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    PENDING = "pending"


# The stat: words of the receipt text (SMPP 3.4, appendix B) and the
# message_state TLV's values (5.2.28), by what they mean for the message.
_STAT_WORDS = {
    "DELIVRD": ReceiptState.DELIVERED,
    "EXPIRED": ReceiptState.FAILED,
    "DELETED": ReceiptState.FAILED,
    "UNDELIV": ReceiptState.FAILED,
    "REJECTD": ReceiptState.FAILED,
    "UNKNOWN": ReceiptState.FAILED,
    "ACCEPTD": ReceiptState.PENDING,
    "ENROUTE": ReceiptState.PENDING,
}
_MESSAGE_STATES = {
    1: ("ENROUTE", ReceiptState.PENDING),
    2: ("DELIVRD", ReceiptState.DELIVERED),
    3: ("EXPIRED", ReceiptState.FAILED),
    4: ("DELETED", ReceiptState.FAILED),
    5: ("UNDELIV", ReceiptState.FAILED),
    6: ("ACCEPTD", ReceiptState.PENDING),
    7: ("UNKNOWN", ReceiptState.FAILED),
    8: ("REJECTD", ReceiptState.FAILED),
}

_RECEIPT_FIELD = re.compile(
    r"(?P<key>id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*"
    r"(?P<value>\S*)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Receipt:
    """What a delivery receipt says; ``ids`` are the ids it names, best first."""

    ids: tuple[str, ...]
    state: ReceiptState
    stat: str
    error: str


def receipt_parse(
    text: str, *, receipted_message_id: str = "", message_state: int | None = None
) -> Receipt | None:
    """Read a receipt from its text and TLVs; None if it names no message.

    The TLVs, where present, win: receipted_message_id is in the same form
    as the submit_sm_resp id, while the text's ``id:`` is often in another
    base or zero-padded.
    """
    fields: dict[str, str] = {}
    for match in _RECEIPT_FIELD.finditer(text):
        fields.setdefault(match["key"].lower(), match["value"])
    ids = tuple(i for i in (receipted_message_id.strip(), fields.get("id", "")) if i)
    if not ids:
        return None

    stat = fields.get("stat", "").upper()
    state = _STAT_WORDS.get(stat)
    if message_state in _MESSAGE_STATES:
        stat, state = _MESSAGE_STATES[message_state]
    if state is None:
        state = ReceiptState.FAILED
    return Receipt(ids=ids, state=state, stat=stat, error=fields.get("err", ""))


def id_key(provider_id: str) -> str:
    """The form ids are compared in: lower case, no leading zeros."""
    return provider_id.strip().lower().lstrip("0") or "0"


_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-f]+")


def id_other_base(provider_id: str) -> str:
    """The same id in the other base some SMSCs use in receipts, or "".

    An id of decimal digits is also given in hexadecimal and one with hex
    letters in decimal: SMSCs answer a submit in one and write the receipt
    text in the other.
    """
    key = id_key(provider_id)
    if _DECIMAL.fullmatch(key):
        return id_key(format(int(key), "x"))
    if _HEX.fullmatch(key):
        return id_key(str(int(key, 16)))
    return ""
