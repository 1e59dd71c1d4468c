"""Concatenated texts from handsets, put back together from stored parts.

A long text reaches us as several parts (UDH or SAR over SMPP, ``concat``
fields over HTTP), in any order, possibly on different binds and with a
restart in between. Each part is stored (``InboundPart``) before the
provider is told it arrived; the part that completes the set removes them
all and hands the whole text to ``inbound_receive``, in one transaction, so
the text is stored exactly once or, after a failure, its parts are kept.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tmc.gateways.models import InboundPart
from tmc.gateways.services import inbound_receive
from tmc.lib.crypto import blind_index, derive_key
from tmc.lib.keys import master_open, master_seal, read_master_key

logger = logging.getLogger(__name__)

PURPOSE = "inbound-part"
GROUP_PURPOSE = "inbound-part-group"
# Parts whose companions have not come by then never will: handsets send a
# long text's parts within seconds.
INCOMPLETE_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class InboundPiece:
    gateway: str
    sender: str
    recipient: str
    reference: int
    total: int
    sequence: int
    text: str


def _group(piece: InboundPiece) -> str:
    # Keyed with the master key: a part stored just before a master key
    # rotation is not found by its companions after it, and expires. A long
    # text's parts arrive within seconds, so this almost never matters.
    key = derive_key(read_master_key(settings.TMC_HOME), GROUP_PURPOSE)
    return blind_index(
        key,
        f"{piece.gateway}|{piece.sender}|{piece.recipient}|"
        f"{piece.reference}|{piece.total}",
    )


def _owner(uid: uuid.UUID) -> str:
    return f"gateways.inbound_part:{uid}"


def inbound_piece_receive(
    piece: InboundPiece, *, on_inbound: Callable[..., Any] = inbound_receive
) -> bool:
    """Store one part; when it completes its text, receive the whole text.

    Returns whether the text was completed. A part that comes again (the
    provider repeating a delivery it had no answer for) changes nothing.
    """
    if piece.total <= 1:
        on_inbound(
            gateway=piece.gateway,
            sender=piece.sender,
            recipient=piece.recipient,
            body=piece.text,
        )
        return True
    if not 1 <= piece.sequence <= piece.total:
        logger.warning(
            "inbound part out of range gateway=%s part=%s/%s",
            piece.gateway,
            piece.sequence,
            piece.total,
        )
        return False

    group = _group(piece)
    uid = uuid.uuid4()
    sealed = master_seal(settings.TMC_HOME, PURPOSE, piece.text, owner=_owner(uid))
    with transaction.atomic():
        InboundPart.objects.bulk_create(
            [
                InboundPart(
                    group=group,
                    sequence=piece.sequence,
                    total=piece.total,
                    uid=uid,
                    sealed_text=sealed,
                )
            ],
            ignore_conflicts=True,
        )
        InboundPart.objects.filter(
            received_at__lt=timezone.now() - INCOMPLETE_TTL
        ).delete()

    with transaction.atomic():
        # Locked, and removed by a delete that must take every row read: of
        # two binds completing one text at once, one gets the rows and the
        # other finds them gone, so the text is received once.
        parts = list(
            InboundPart.objects.select_for_update()
            .filter(group=group)
            .order_by("sequence")
        )
        if len(parts) < piece.total:
            return False
        deleted, _ = InboundPart.objects.filter(pk__in=[p.pk for p in parts]).delete()
        if deleted != len(parts):
            transaction.set_rollback(True)
            return False
        body = "".join(
            master_open(
                settings.TMC_HOME, PURPOSE, part.sealed_text, owner=_owner(part.uid)
            )[0]
            for part in parts
        )
        on_inbound(
            gateway=piece.gateway,
            sender=piece.sender,
            recipient=piece.recipient,
            body=body,
        )
    logger.info("inbound parts joined gateway=%s parts=%s", piece.gateway, piece.total)
    return True


def inbound_parts_reseal() -> int:
    """Re-seal stored parts under the current master key (a rotation)."""
    from tmc.accounts.encryption import master_sealed_reseal

    return master_sealed_reseal(
        InboundPart.objects.all(),
        field="sealed_text",
        purpose=PURPOSE,
        owner=lambda part: _owner(part.uid),
    )
