"""How fast the SMPP adapter moves messages, next to a bare smpplib loop.

    .venv/bin/python bench/smpp.py [--messages 50000] [--windows 1,10,50]
        [--delays 0,20] [--dispatch batch|one]
        [--database-url postgres://postgres@127.0.0.1:5432/x]

Needs the local SMSC (``make smsc``). For each window size and SMSC answer
delay, with delivery receipts on, it queues ``--messages`` one-part
messages of a campaign, then dispatches them in two worker processes while
a bind worker thread sends them, and prints messages/s (every submit_sm answered)
and receipts/s (every receipt recorded and the message delivered), both
counted from the first dispatch: the drain of a queue, end to end. The
dispatchers claim and submit batches as campaign workers do
(``--dispatch batch``) or one message a transaction as the task a single
text takes does (``--dispatch one``). The ceiling beside it is a bare
smpplib client with the same window against the same SMSC, doing no
database work; the ratio is adapter / ceiling.

The gateway's throughput limit is set far above what is measured
(TMC_GATEWAY_RATE, unless given), so the figure is the platform's own.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_start

DISPATCHERS = 2


def _queue_messages(count: int) -> tuple[int, list[int]]:
    """Queue ``count`` messages of a new campaign; return its id and theirs."""
    from tmc.lib.segments import Encoding
    from tmc.messaging.models import Campaign, Message
    from tmc.testing import SENDER, make_tenant

    tenant = make_tenant(f"Bench {time.monotonic_ns()}", credits=0)
    campaign = Campaign(
        organisation=tenant.organisation,
        created_by=tenant.user,
        sender=SENDER,
        encoding=Encoding.GSM7,
        parts=1,
        recipient_count=count,
        credits_reserved=count,
    )
    campaign.seal(body="Your code is ...")
    campaign.save()
    rows = []
    for n in range(count):
        message = Message(
            organisation=tenant.organisation,
            created_by=tenant.user,
            campaign=campaign,
            sender=SENDER,
            encoding=Encoding.GSM7,
            parts=1,
            credits=1,
        )
        message.seal(recipient=f"+4474{n:08d}", body=f"Your code is {n:06d}")
        rows.append(message)
    created = Message.objects.bulk_create(rows, batch_size=1000)
    return campaign.pk, [m.pk for m in created]


def _dispatch(
    campaign_id: int, share: list[int], mode: str, go: multiprocessing.synchronize.Event
) -> None:
    """One dispatch worker process: submit its share, or campaign batches."""
    from django.db import connections

    from tmc.messaging.campaigns import campaign_dispatch_batch
    from tmc.messaging.services import message_dispatch

    connections.close_all()  # a forked worker opens its own connection
    go.wait()
    if mode == "one":
        for message_id in share:
            message_dispatch(message_id=message_id)
    else:
        while campaign_dispatch_batch(campaign_id=campaign_id):
            pass
    connections.close_all()


def _adapter_run(
    port: int, window: int, campaign_id: int, ids: list[int], mode: str
) -> tuple[float, float]:
    from django.db import connections

    from tmc.gateways.smpp.bind import BindConfig, SmppBind

    # Dispatch in processes of their own, as task workers are: threads here
    # would take the bind thread's interpreter lock at every socket read.
    # Forked before the bind's thread starts, and told when to begin.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    go = context.Event()
    dispatchers = [
        context.Process(
            target=_dispatch, args=(campaign_id, ids[n::DISPATCHERS], mode, go)
        )
        for n in range(DISPATCHERS)
    ]
    for dispatcher in dispatchers:
        dispatcher.start()

    bind = SmppBind(
        BindConfig(
            host="127.0.0.1",
            port=port,
            system_id="bench",
            password="bench",  # noqa: S106  (the local test SMSC)
            window=window,
            name=f"bench-{window}-{time.monotonic_ns()}",
            poll_seconds=0.005,
        )
    )
    stop = threading.Event()
    thread = threading.Thread(target=bind.run, args=(stop,))
    thread.start()
    bind.bound.wait(10)

    started = time.monotonic()
    go.set()
    submitted = received = 0.0
    while not received:
        time.sleep(0.002)
        if not submitted and bind.stats.accepted >= len(ids):
            submitted = time.monotonic() - started
        if bind.stats.receipts >= len(ids):
            received = time.monotonic() - started
    for dispatcher in dispatchers:
        dispatcher.join()
        assert dispatcher.exitcode == 0, "a dispatch worker failed"
    stop.set()
    thread.join()
    return len(ids) / submitted, len(ids) / received


def _bare_run(port: int, window: int, count: int) -> tuple[float, float]:
    import select

    import smpplib.client

    client = smpplib.client.Client(
        "127.0.0.1", port, timeout=10, allow_unknown_opt_params=True
    )
    outstanding = 0
    answered = receipts = 0

    def sent(pdu: object) -> None:
        nonlocal outstanding, answered
        outstanding -= 1
        answered += 1

    def delivered(pdu: object) -> int:
        nonlocal receipts
        receipts += 1
        return 0

    client.set_message_sent_handler(sent)
    client.set_message_received_handler(delivered)
    client.connect()
    # As the adapter's socket: without it Nagle holds back each submit_sm
    # written while earlier ones are unacknowledged, and a window above one
    # waits on delayed ACKs.
    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id="bare", password="bare")  # noqa: S106
    started = time.monotonic()
    submitted_at = 0.0
    sent_count = 0
    while receipts < count:
        while outstanding < window and sent_count < count:
            client.send_message(
                source_addr="Bench",
                destination_addr=f"4474{sent_count:08d}",
                short_message=f"Your code is {sent_count:06d}".encode(),
                registered_delivery=1,
            )
            outstanding += 1
            sent_count += 1
        ready, _, _ = select.select([client._socket], [], [], 1)
        if ready:
            client.read_once()
        if not submitted_at and answered >= count:
            submitted_at = time.monotonic() - started
    received = time.monotonic() - started
    client.unbind()
    client.disconnect()
    return count / submitted_at, count / received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--windows", default="1,10,50")
    parser.add_argument("--delays", default="0,20", help="SMSC answer delay, ms")
    parser.add_argument("--dispatch", choices=["batch", "one"], default="batch")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    os.environ["TMC_GATEWAY"] = "smpp"
    os.environ.setdefault("TMC_GATEWAY_RATE", "1000000")
    label = django_start(args.database_url)
    # Per-message log lines would time the log, not the adapter.
    logging.disable(logging.INFO)
    from tmc.gateways.smpp.peer import LocalSmsc

    smsc = LocalSmsc()
    print(
        f"{args.messages} one-part messages, receipts on, database {label}, "
        f"dispatch {args.dispatch}, "
        f"gateway limit {float(os.environ['TMC_GATEWAY_RATE']):,.0f}/s"
    )
    print(
        f"{'window':>6} {'delay':>6} | {'adapter msg/s':>13} {'rcpt/s':>8} | "
        f"{'bare msg/s':>10} {'rcpt/s':>8} | {'ratio':>5}"
    )
    try:
        for delay in [int(d) for d in args.delays.split(",")]:
            for window in [int(w) for w in args.windows.split(",")]:
                smsc.reset()
                smsc.configure(submitDelayMs=delay)
                campaign_id, ids = _queue_messages(args.messages)
                adapter = _adapter_run(
                    smsc.port, window, campaign_id, ids, args.dispatch
                )
                smsc.reset()
                smsc.configure(submitDelayMs=delay)
                bare = _bare_run(smsc.port, window, args.messages)
                print(
                    f"{window:>6} {delay:>4}ms | {adapter[0]:>13.0f} "
                    f"{adapter[1]:>8.0f} | {bare[0]:>10.0f} {bare[1]:>8.0f} | "
                    f"{adapter[0] / bare[0]:>5.2f}",
                    flush=True,
                )
    finally:
        smsc.stop()


if __name__ == "__main__":
    main()
