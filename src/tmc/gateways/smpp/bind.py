"""One long-lived SMPP 3.4 transceiver bind, run by ``tmc smpp``.

Why a worker process per bind rather than a thread in each task worker: an
SMSC account allows few binds, and a window of outstanding submit_sm only
pays off when many messages share one connection. The task workers queue
parts in the database (``SmppPart``); this loop, in a single thread, keeps
a batch of them claimed ahead (``claim_ahead``, or the window if larger),
writes them as the window has room, and reads what the SMSC sends back.
Every so often, while the window is out, a round records what came back
(answers, receipts, texts) in one transaction and claims the next batch in
another: the database work overlaps the SMSC's, and costs two transactions
a round however many parts the round moved, where a round per window
would make a small window pay a commit per part. A single thread owns the
socket, so the window, the sequence numbers and the pending answers need no
locks. smpplib encodes and decodes the PDUs; the rest is here.

Exactly-once is kept by the order of writes: a part is marked sent when it
is claimed, before its submit_sm leaves, so a bind lost before the answer
leaves it "unanswered" for reconciliation rather than sending it twice.
Parts claimed but not yet written go back to the queue when the bind is
lost, throttled or stopped; only a process killed outright leaves them
(at most one claimed batch) unanswered with those in flight, for the
operator to reconcile. A deliver_sm is acknowledged only after what it said
is committed, so the SMSC sends again whatever a crash lost.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction
from django.utils import timezone

from tmc.gateways.inbound_parts import InboundPiece, inbound_piece_receive
from tmc.gateways.models import GatewayProvider
from tmc.gateways.services import inbound_accept
from tmc.gateways.smpp.codec import (
    ESM_CLASS_RECEIPT,
    ESM_CLASS_TYPE_MASK,
    ESM_CLASS_UDHI,
    Concat,
    Receipt,
    decode_text,
    encode_part,
    receipt_parse,
    split_udh,
)
from tmc.gateways.smpp.models import SmppBindStatus
from tmc.gateways.smpp.services import (
    NAME,
    Answer,
    ClaimedPart,
    answers_record,
    parts_claim,
    parts_requeue,
    parts_unanswered,
    receipts_record,
)

logger = logging.getLogger(__name__)

# The SMSC is busy, not refusing: wait and send the same part again.
THROTTLED = frozenset(
    {smpplib.consts.SMPP_ESME_RTHROTTLED, smpplib.consts.SMPP_ESME_RMSGQFUL}
)
TON_INTERNATIONAL = 1
TON_ALPHANUMERIC = 5
NPI_E164 = 1
INTERFACE_VERSION = 0x34
# How often a bound bind writes its status row for the health view.
STATUS_SECONDS = 2.0
# How long the socket stays quiet before what came back is recorded and the
# SMSC's deliver_sm acknowledged, rather than at the end of a whole round.
QUIET_SECONDS = 0.002


@dataclass(frozen=True)
class BindConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    window: int = 10
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str = ""
    gsm7_packed: bool = False
    enquire_link_seconds: float = 30.0
    name: str = "smpp-1"
    gateway: str = NAME
    timeout: float = 10.0
    poll_seconds: float = 0.05
    # Parts claimed at once; what a killed process may leave unanswered.
    claim_ahead: int = 50
    # The longest answers and receipts wait in memory to be recorded.
    record_seconds: float = 0.05
    drain_seconds: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 60.0
    throttle_min: float = 0.1
    throttle_max: float = 5.0

    @classmethod
    def from_settings(cls, **overrides: Any) -> BindConfig:
        values: dict[str, Any] = {
            "host": settings.TMC_SMPP_HOST,
            "port": settings.TMC_SMPP_PORT,
            "system_id": settings.TMC_SMPP_SYSTEM_ID,
            "password": settings.TMC_SMPP_PASSWORD,
            "system_type": settings.TMC_SMPP_SYSTEM_TYPE,
            "window": settings.TMC_SMPP_WINDOW,
            "tls": settings.TMC_SMPP_TLS,
            "tls_ca_file": settings.TMC_SMPP_TLS_CA_FILE,
            "gsm7_packed": settings.TMC_SMPP_GSM7_PACKED,
            "enquire_link_seconds": settings.TMC_SMPP_ENQUIRE_LINK_SECONDS,
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_provider(cls, provider: GatewayProvider, **overrides: Any) -> BindConfig:
        """The bind settings of an SMPP provider staff set up."""
        from tmc.gateways.providers import provider_credentials

        values: dict[str, Any] = {
            "gateway": provider.name,
            "name": f"{provider.name}-1",
            "host": provider.setting("host", ""),
            "port": int(provider.setting("port", 2775)),
            "system_id": provider.setting("system_id", ""),
            "password": provider_credentials(provider).get("password", ""),
            "system_type": provider.setting("system_type", ""),
            "window": int(provider.setting("window", 10)),
            "tls": bool(provider.setting("tls", False)),
            "tls_ca_file": provider.setting("tls_ca_file", ""),
            "gsm7_packed": bool(provider.setting("gsm7_packed", False)),
            "enquire_link_seconds": float(
                provider.setting("enquire_link_seconds", 30.0)
            ),
        }
        values.update(overrides)
        return cls(**values)


class _Client(smpplib.client.Client):  # type: ignore[misc]
    """smpplib's client with our socket options and deferred acknowledgements."""

    def __init__(self, bind: SmppBind, config: BindConfig) -> None:
        context = None
        if config.tls:
            # A private CA's file, for SMSCs whose certificates no public
            # authority signed; the host name is still checked against it.
            context = ssl.create_default_context(cafile=config.tls_ca_file or None)
            if not config.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        super().__init__(
            config.host,
            config.port,
            timeout=config.timeout,
            ssl_context=context,
            logger_name="tmc.gateways.smpp.wire",
            allow_unknown_opt_params=True,
        )
        self._bind_owner = bind
        self._tls_host = config.host

    def _create_socket(self) -> socket.socket:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A submit_sm is a small write that should leave at once: Nagle's
        # delay would hold it back waiting for the previous one's ACK.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        raw.settimeout(self.timeout)
        if self._ssl_context is None:
            return raw
        wrapped: socket.socket = self._ssl_context.wrap_socket(
            raw, server_hostname=self._tls_host
        )
        return wrapped

    def read_pdu(self) -> Any:
        pdu = super().read_pdu()
        self._bind_owner._seen(self, pdu)
        return pdu

    def _message_received(self, pdu: Any) -> None:
        # smpplib answers a deliver_sm as soon as the handler returns; we
        # answer after the batch it belongs to is committed instead, so a
        # receipt or a text is never acknowledged and then lost.
        self.message_received_handler(pdu=pdu)
        self._bind_owner._unacked.append(pdu.sequence)


@dataclass
class BindStats:
    accepted: int = 0
    refused: int = 0
    throttled: int = 0
    receipts: int = 0
    inbound: int = 0
    binds: int = 0
    unanswered: int = 0


class SmppBind:
    """A transceiver bind that re-binds with back-off until stopped."""

    def __init__(
        self,
        config: BindConfig,
        *,
        on_inbound: Callable[..., Any] = inbound_accept,
    ) -> None:
        self.config = config
        self.stats = BindStats()
        self.bound = threading.Event()
        self._on_inbound = on_inbound
        self._inflight: dict[int, int] = {}  # sequence number -> part id
        self._ready: deque[ClaimedPart] = deque()  # claimed, not yet written
        self._answers: list[Answer] = []
        self._throttled: list[int] = []
        self._receipts: list[Receipt] = []
        self._texts: list[tuple[str, str, str]] = []
        self._unacked: list[int] = []
        self._pieces: list[InboundPiece] = []
        self._pause_until = 0.0
        self._throttle_wait = config.throttle_min
        self._last_read = 0.0
        self._last_write = 0.0
        self._last_round = 0.0
        # The last read found the socket with nothing to read.
        self._quiet = False
        self._closing = False
        self._status_at = 0.0
        self._status_accepted = 0
        self._last_receipt_at: Any = None

    # --- the loop ---------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Hold the bind until ``stop`` is set; re-bind after any loss."""
        wait = self.config.reconnect_min
        while not stop.is_set():
            client = _Client(self, self.config)
            try:
                self._open(client)
                wait = self.config.reconnect_min
                self._session(client, stop)
                self._lost()
                self._status(SmppBindStatus.State.DOWN)
            except (
                smpplib.exceptions.ConnectionError,
                smpplib.exceptions.PDUError,
                OSError,
            ) as exc:
                logger.warning(
                    "smpp bind lost bind=%s error=%s retry_in=%.1fs",
                    self.config.name,
                    type(exc).__name__,
                    wait,
                )
                self._lost()
                self._status(SmppBindStatus.State.DOWN, error=_error_text(exc))
                # Back off so a down SMSC is not hammered with binds; the
                # jitter-free doubling is enough for one bind per process.
                stop.wait(wait)
                wait = min(wait * 2, self.config.reconnect_max)
            finally:
                self.bound.clear()
                if client._socket is not None:
                    client.disconnect()
                close_old_connections()
        self._status(SmppBindStatus.State.STOPPED)
        # The thread's own connection, which the caller cannot close.
        connections.close_all()

    def _open(self, client: _Client) -> None:
        client.set_message_sent_handler(self._on_submit_resp)
        client.set_message_received_handler(self._on_deliver)
        # smpplib raises on any PDU with an error status unless told
        # otherwise; a refused or throttled submit is ordinary here.
        client.set_error_pdu_handler(self._on_error_pdu)
        client.connect()
        client.bind_transceiver(
            system_id=self.config.system_id,
            password=self.config.password,
            system_type=self.config.system_type,
            interface_version=INTERFACE_VERSION,
        )
        # Parts this bind had in flight when it was last lost (or the process
        # died) were never answered: they are for reconciliation now.
        self.stats.unanswered += parts_unanswered(bind=self.config.name)
        self.stats.binds += 1
        self._closing = False
        self._last_read = self._last_write = time.monotonic()
        self.bound.set()
        self._status(SmppBindStatus.State.BOUND, changed=True)
        logger.info(
            "smpp bound bind=%s host=%s window=%s",
            self.config.name,
            self.config.host,
            self.config.window,
        )

    def _session(self, client: _Client, stop: threading.Event) -> None:
        while not stop.is_set() and not self._closing:
            self._fill_window(client)
            if self._round_due():
                # While the window is out: record what came back, claim more.
                self._flush(client)
                self._claim()
                self._fill_window(client)
            self._read(client)
            self._keep_alive(client)
            if time.monotonic() - self._status_at >= STATUS_SECONDS:
                self._status(SmppBindStatus.State.BOUND)
        if not self._closing:
            self._shut_down(client)

    @property
    def _ahead(self) -> int:
        return max(self.config.claim_ahead, self.config.window)

    def _round_due(self) -> bool:
        """Whether to record and claim now rather than keep the socket busy."""
        if len(self._ready) <= self._ahead // 2:
            return True
        if len(self._answers) + len(self._receipts) >= self._ahead:
            return True
        if self._throttled or self._texts or self._pieces:
            return True
        if self._quiet and (self._answers or self._receipts or self._unacked):
            return True
        return time.monotonic() - self._last_round >= self.config.record_seconds

    def _claim(self) -> None:
        """Claim parts ahead, up to a batch of them, once half are gone."""
        self._last_round = time.monotonic()
        if self._closing or self._last_round < self._pause_until:
            return
        if len(self._ready) > self._ahead // 2:
            return
        self._ready.extend(
            parts_claim(
                bind=self.config.name,
                limit=self._ahead - len(self._ready),
                gateway=self.config.gateway,
            )
        )

    def _fill_window(self, client: _Client) -> None:
        """Write claimed parts while the window has room."""
        if time.monotonic() < self._pause_until:
            return
        while self._ready and len(self._inflight) < self.config.window:
            part = self._ready.popleft()
            try:
                pdu = client.send_message(**self._submit_fields(part))
            except Exception:
                # The rest were never written (``_lost`` puts them back).
                # The one whose write failed may have left, so it is kept
                # as in flight (under a key no sequence number takes) and
                # becomes unanswered with the others.
                self._inflight[-part.part_id] = part.part_id
                raise
            self._inflight[pdu.sequence] = part.part_id
            self._last_write = time.monotonic()

    def _unclaim(self) -> None:
        """Put the parts claimed but never written back in the queue."""
        if self._ready:
            ready, self._ready = list(self._ready), deque()
            parts_requeue(part_ids=[p.part_id for p in ready])

    def _submit_fields(self, part: ClaimedPart) -> dict[str, Any]:
        encoded = encode_part(
            part.text,
            encoding=part.encoding,
            sequence=part.sequence,
            total=part.total,
            reference=part.reference,
            packed=self.config.gsm7_packed,
        )
        numeric = part.sender.lstrip("+").isdigit()
        return {
            "source_addr_ton": TON_INTERNATIONAL if numeric else TON_ALPHANUMERIC,
            "source_addr_npi": NPI_E164 if numeric else 0,
            "source_addr": part.sender.lstrip("+") if numeric else part.sender,
            "dest_addr_ton": TON_INTERNATIONAL,
            "dest_addr_npi": NPI_E164,
            "destination_addr": part.recipient.lstrip("+"),
            "esm_class": encoded.esm_class,
            "data_coding": encoded.data_coding,
            "registered_delivery": 1,
            "short_message": encoded.short_message,
        }

    def _read(self, client: _Client) -> None:
        """Read what has arrived, waiting a little if the window is full."""
        full = len(self._inflight) >= self.config.window
        paused = time.monotonic() < self._pause_until
        if self._ready and not (full or paused):
            timeout = 0.0  # parts to write, and room for them
        elif self._answers or self._receipts or self._unacked:
            # Only a short wait: once the socket falls quiet they are
            # recorded, since an SMSC holds further deliver_sm until those
            # it sent are acknowledged, and would wait out a whole round.
            timeout = QUIET_SECONDS
        elif full or paused:
            timeout = 0.5
        else:
            timeout = self.config.poll_seconds
        sock = client._socket
        for count in range(1000):
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            if not pending:
                ready, _, _ = select.select(
                    [sock], [], [], timeout if count == 0 else 0
                )
                if not ready:
                    self._quiet = count == 0 and timeout > 0
                    return
            client.read_once(auto_send_enquire_link=False)
            if self._closing:
                return

    def _keep_alive(self, client: _Client) -> None:
        now = time.monotonic()
        interval = self.config.enquire_link_seconds
        if now - self._last_read > 2 * interval + self.config.timeout:
            # The enquire_link sent a while ago went unanswered: the link
            # is dead even if TCP has not noticed.
            raise smpplib.exceptions.ConnectionError("no answer to enquire_link")
        if now - max(self._last_write, self._last_read) > interval:
            client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
            self._last_write = now

    def _shut_down(self, client: _Client) -> None:
        """Wait for the window to empty, then unbind cleanly."""
        deadline = time.monotonic() + self.config.drain_seconds
        self._pause_until = float("inf")
        self._unclaim()
        while self._inflight and time.monotonic() < deadline:
            self._read(client)
            self._flush(client)
        self._pause_until = 0.0
        client.send_pdu(smpplib.smpp.make_pdu("unbind", client=client))
        deadline = time.monotonic() + self.config.timeout
        try:
            while (
                client.state != smpplib.consts.SMPP_CLIENT_STATE_OPEN
                and time.monotonic() < deadline
            ):
                self._read(client)
                self._flush(client)
        except smpplib.exceptions.ConnectionError:
            pass  # the SMSC may close as soon as it has answered the unbind
        logger.info("smpp unbound bind=%s", self.config.name)

    def _status(self, state: str, *, error: str = "", changed: bool = False) -> None:
        """Write this bind's row for the health view; never fails the bind."""
        now = time.monotonic()
        elapsed = now - self._status_at if self._status_at else 0.0
        rate = (
            (self.stats.accepted - self._status_accepted) / elapsed
            if elapsed > 0 and state == SmppBindStatus.State.BOUND
            else 0.0
        )
        self._status_at = now
        self._status_accepted = self.stats.accepted
        values: dict[str, Any] = {
            "gateway": self.config.gateway,
            "state": state,
            "window": self.config.window,
            "in_flight": len(self._inflight),
            "rate": round(rate, 1),
            "accepted": self.stats.accepted,
            "refused": self.stats.refused,
            "throttled": self.stats.throttled,
            "receipts": self.stats.receipts,
            "inbound": self.stats.inbound,
            "last_receipt_at": self._last_receipt_at,
            "heartbeat_at": timezone.now(),
        }
        if error:
            values["last_error"] = error[:200]
            values["last_error_at"] = timezone.now()
        try:
            row = SmppBindStatus.objects.filter(name=self.config.name)
            previous = row.values_list("state", flat=True).first()
            if changed or previous != state:
                values["since"] = timezone.now()
            if previous is None:
                SmppBindStatus.objects.create(name=self.config.name, **values)
            else:
                row.update(**values)
        except DatabaseError:
            logger.warning("smpp bind status not written bind=%s", self.config.name)
            close_old_connections()

    # --- what arrives -----------------------------------------------------

    def _seen(self, client: _Client, pdu: Any) -> None:
        self._last_read = time.monotonic()
        if pdu.command == "unbind":
            # The SMSC is closing the session: answer, and bind again.
            resp = smpplib.smpp.make_pdu("unbind_resp", client=client)
            resp.sequence = pdu.sequence
            client.send_pdu(resp)
            self._closing = True
            logger.info("smpp unbind from the SMSC bind=%s", self.config.name)

    def _on_submit_resp(self, pdu: Any, **kwargs: Any) -> None:
        part_id = self._inflight.pop(pdu.sequence, None)
        if part_id is None:
            logger.warning("smpp answer to no submit sequence=%s", pdu.sequence)
            return
        status = int(pdu.status)
        if status == 0:
            message_id = pdu.message_id
            if isinstance(message_id, bytes):
                message_id = message_id.decode("ascii", errors="replace")
            self._answers.append(Answer(part_id, 0, message_id or ""))
            self.stats.accepted += 1
            self._throttle_wait = self.config.throttle_min
        elif status in THROTTLED:
            self._throttled.append(part_id)
            self.stats.throttled += 1
            # Slow down: no new submits until the pause ends, and each
            # throttle in a row doubles the pause.
            self._pause_until = time.monotonic() + self._throttle_wait
            self._throttle_wait = min(self._throttle_wait * 2, self.config.throttle_max)
        else:
            self._answers.append(Answer(part_id, status, detail=_status_text(status)))
            self.stats.refused += 1

    def _on_error_pdu(self, pdu: Any) -> None:
        if pdu.command == "submit_sm_resp":
            return  # _on_submit_resp, which smpplib calls next, handles it
        if pdu.command == "generic_nack" and pdu.sequence in self._inflight:
            # The SMSC could not read our submit_sm: sending it again would
            # fail the same way.
            part_id = self._inflight.pop(pdu.sequence)
            status = int(pdu.status)
            self._answers.append(Answer(part_id, status, detail=_status_text(status)))
            self.stats.refused += 1
            return
        logger.warning(
            "smpp error pdu command=%s status=0x%08x", pdu.command, int(pdu.status)
        )

    def _on_deliver(self, pdu: Any, **kwargs: Any) -> int:
        if pdu.command != "deliver_sm":
            return 0
        esm_class = int(pdu.esm_class or 0)
        short_message = pdu.short_message or b""
        if not short_message and pdu.message_payload:
            short_message = pdu.message_payload
        if esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_RECEIPT:
            receipt = receipt_parse(
                short_message.decode("latin-1"),
                receipted_message_id=_text(pdu.receipted_message_id),
                message_state=pdu.message_state,
            )
            if receipt is None:
                logger.warning("smpp receipt without an id sequence=%s", pdu.sequence)
            else:
                self._receipts.append(receipt)
            return 0
        if esm_class & ESM_CLASS_TYPE_MASK:
            return 0  # another kind of acknowledgement; nothing to record
        self._on_text(pdu, esm_class, short_message)
        return 0

    def _on_text(self, pdu: Any, esm_class: int, short_message: bytes) -> None:
        sender = _address(pdu.source_addr, pdu.source_addr_ton)
        recipient = _address(pdu.destination_addr, pdu.dest_addr_ton)
        concat: Concat | None = None
        payload = short_message
        if esm_class & ESM_CLASS_UDHI:
            concat, payload = split_udh(short_message)
        elif pdu.sar_msg_ref_num is not None and pdu.sar_total_segments:
            concat = Concat(
                reference=int(pdu.sar_msg_ref_num),
                total=int(pdu.sar_total_segments),
                sequence=int(pdu.sar_segment_seqnum or 1),
            )
        text = decode_text(payload, int(pdu.data_coding or 0))
        if concat is None or concat.total <= 1:
            self._texts.append((sender, recipient, text))
            return
        # Stored before the deliver_sm is answered, and joined in the
        # database: the other parts may come after a restart or on another
        # bind.
        self._pieces.append(
            InboundPiece(
                gateway=self.config.gateway,
                sender=sender,
                recipient=recipient,
                reference=concat.reference,
                total=concat.total,
                sequence=concat.sequence,
                text=text,
            )
        )

    # --- recording --------------------------------------------------------

    def _flush(self, client: _Client | None) -> None:
        """Commit what the last reads brought, then acknowledge deliver_sm."""
        status = 0
        try:
            self._record()
            if client is not None:
                while self._texts:
                    sender, recipient, body = self._texts[0]
                    self._on_inbound(
                        gateway=self.config.gateway,
                        sender=sender,
                        recipient=recipient,
                        body=body,
                    )
                    self._texts.pop(0)
                    self.stats.inbound += 1
                while self._pieces:
                    if inbound_piece_receive(
                        self._pieces[0], on_inbound=self._on_inbound
                    ):
                        self.stats.inbound += 1
                    self._pieces.pop(0)
        except DatabaseError:
            logger.exception("smpp could not record a batch bind=%s", self.config.name)
            # A temporary error asks the SMSC to deliver again later.
            status = smpplib.consts.SMPP_ESME_RX_T_APPN
            self._texts.clear()
            self._pieces.clear()
            close_old_connections()
        if client is None:
            self._unacked.clear()
            return
        if not self._unacked:
            return
        for sequence in self._unacked:
            resp = smpplib.smpp.make_pdu(
                "deliver_sm_resp", client=client, status=status
            )
            resp.sequence = sequence
            client.send_pdu(resp)
        self._unacked.clear()
        self._last_write = time.monotonic()

    def _record(self) -> None:
        """Store answers, throttles and receipts read since the last round.

        One transaction for them all: a round costs one commit whatever it
        brought.
        """
        answers, self._answers = self._answers, []
        throttled, self._throttled = self._throttled, []
        receipts, self._receipts = self._receipts, []
        if not (answers or throttled or receipts):
            return
        with transaction.atomic():
            if answers:
                answers_record(answers=answers, gateway=self.config.gateway)
            if throttled:
                # Those claimed after them go back too, so that the
                # throttled go again first, in their order.
                ready, self._ready = [p.part_id for p in self._ready], deque()
                parts_requeue(part_ids=throttled + ready)
            if receipts:
                receipts_record(receipts=receipts, gateway=self.config.gateway)
        self.stats.receipts += len(receipts)
        if receipts:
            self._last_receipt_at = timezone.now()

    def _lost(self) -> None:
        """Record what is known after the socket is gone."""
        # Answers already read are kept; deliver_sm not yet acknowledged
        # will come again, so their texts are not stored now.
        self._texts.clear()
        self._pieces.clear()
        try:
            self._flush(None)
            self._unclaim()
            if self._inflight:
                self.stats.unanswered += parts_unanswered(
                    part_ids=list(self._inflight.values())
                )
        except DatabaseError:
            logger.exception("smpp could not record a lost bind=%s", self.config.name)
        self._inflight.clear()
        self._ready.clear()
        self._pause_until = 0.0


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def _address(value: Any, ton: Any) -> str:
    address = _text(value)
    if ton == TON_INTERNATIONAL and address.isdigit():
        return f"+{address}"
    return address


def _error_text(exc: BaseException) -> str:
    """What went wrong, for operators: the kind of error and its message.

    smpplib reports any failure to connect as "Connection refused"; the error
    it replaced (a certificate not verified, say) is the useful part.
    """
    detail = str(exc).strip()
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause).strip():
        text += f" ({type(cause).__name__}: {str(cause).strip()})"
    return text


def _status_text(status: int) -> str:
    description = smpplib.consts.DESCRIPTIONS.get(status, "unknown status")
    return f"{description} (0x{status:08X})"
