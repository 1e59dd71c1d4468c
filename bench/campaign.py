"""How fast a campaign is accepted and dispatched, next to a plain insert.

    .venv/bin/python bench/campaign.py [--recipients 100000] [--dispatch 10000]
        [--database-url URL]

Prints:
- rows/s for ``campaign_send`` on ``--recipients`` typed UK mobile numbers
  (normalise, deduplicate, opt-out check, price, AES-GCM twice a row, blind
  indexes, executemany in 1,000-row chunks, one debit, one event), and the
  process's peak memory;
- rows/s for a plain ``executemany`` of the same rows' plaintext into a table
  of the same shape with the blind-index column indexed, in 1,000-row
  transactions, on the same database in the same run; and the ratio
  (target: at least 0.5); then, for an honest second floor, the same rows
  into a copy of the message table itself (its columns, keys and its
  indexes), and the ratio to that;
- messages/s dispatching ``--dispatch`` of the campaign's messages through
  the simulator (delivery reports included) with one worker process, then as
  many again with two, then with four; each worker claims batches of
  ``DISPATCH_BATCH`` with SKIP LOCKED on PostgreSQL. The peer, measured
  first in the same run: ``--peer`` messages with two workers, claimed the
  same way and each submitted in a transaction of its own (the path a
  single text takes); and the ratio.

The gateway's throughput limit is set far above what is measured
(TMC_GATEWAY_RATE, unless given), so the figure is the platform's own.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import resource
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_start, table_copy

BATCH = 1000
PEER_BATCH = 100
PASSWORD = "Bench-Horse-Battery-42"  # noqa: S105  # nosec B105
BODY = "Your shift on Saturday starts at 08:00. Reply STOP to opt out."


def _numbers(count: int) -> list[str]:
    generator = random.Random(11)  # noqa: S311  # nosec B311
    # 07400 000000 to 07409 999999: UK mobile numbers, all valid.
    return [f"074{n:08d}" for n in generator.sample(range(10_000_000), count)]


def _plain_insert(numbers: list[str], organisation_id: int, user_id: int) -> float:
    from django.db import connection, transaction
    from django.utils import timezone

    serial = "integer" if connection.vendor == "sqlite" else "serial"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE bench_plain_message (id {serial} PRIMARY KEY, "
            "organisation_id integer NOT NULL, created_by_id integer NOT NULL, "
            "campaign_id integer, uid char(32) NOT NULL, sender varchar(16) NOT NULL, "
            "recipient_sealed text NOT NULL, recipient_index varchar(32) NOT NULL, "
            "recipient_route varchar(32) NOT NULL, body_sealed text NOT NULL, "
            "encoding varchar(8) NOT NULL, parts smallint NOT NULL, "
            "credits integer NOT NULL, status varchar(16) NOT NULL, "
            "gateway varchar(40) NOT NULL, provider_message_id varchar(64) NOT NULL, "
            "failure_reason varchar(200) NOT NULL, created_at timestamp NOT NULL)"
        )
        cursor.execute(
            "CREATE INDEX bench_plain_index ON bench_plain_message (recipient_index)"
        )
    now = timezone.now()
    started = time.perf_counter()
    for start in range(0, len(numbers), BATCH):
        rows = [
            (organisation_id, user_id, 1, uuid.uuid4().hex, "Bench", number,
             number, number, BODY, "GSM-7", 1, 1, "queued", "", "", "", now)
            for number in numbers[start : start + BATCH]
        ]  # fmt: skip
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bench_plain_message (organisation_id, created_by_id, "
                "campaign_id, uid, sender, recipient_sealed, recipient_index, "
                "recipient_route, body_sealed, encoding, parts, credits, status, "
                "gateway, provider_message_id, failure_reason, created_at) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
    return time.perf_counter() - started


def _shaped_insert(
    numbers: list[str], organisation_id: int, user_id: int, campaign_id: int
) -> float:
    """The same plaintext rows into a copy of the message table itself (its
    columns, keys and indexes), by ``executemany`` in 1,000-row
    transactions."""
    from django.db import connection, transaction
    from django.utils import timezone

    from tmc.messaging.campaigns import _MESSAGE_COLUMNS
    from tmc.messaging.models import Message

    table_copy(Message._meta.db_table, "bench_shaped")
    now = timezone.now()
    insert = (
        f"INSERT INTO bench_shaped ({', '.join(_MESSAGE_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(_MESSAGE_COLUMNS))})"
    )
    # By name, so the rows follow the columns whatever their order.
    shared = {
        "organisation_id": organisation_id, "created_by_id": user_id,
        "campaign_id": campaign_id, "sender": "Bench", "body_sealed": BODY,
        "encoding": "GSM-7", "parts": 1, "credits": 1, "free_parts": 0,
        "status": "queued", "gateway": "", "provider_message_id": "",
        "failure_reason": "", "created_at": now, "attempts": 0, "expires_at": now,
    }  # fmt: skip
    rows = []
    for number in numbers:
        values = {
            **shared,
            "uid": uuid.uuid4().hex,
            "recipient_sealed": number,
            "recipient_index": number,
            "recipient_route": number,
        }
        rows.append(tuple(values[column] for column in _MESSAGE_COLUMNS))
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(insert, rows[start : start + BATCH])
    took = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_shaped")
    return took


def _drain(campaign_id: int, quota: int, one_by_one: bool) -> None:
    """One worker: claim and submit batches until ``quota`` are sent.

    ``one_by_one`` is the peer: the same claims, each message then submitted
    and recorded in a transaction of its own (``message_submit``, the path
    a single text takes).
    """
    from django.db import connections

    from tmc.messaging.campaigns import _messages_claim, campaign_dispatch_batch
    from tmc.messaging.models import Message
    from tmc.messaging.services import message_submit

    connections.close_all()  # a forked worker opens its own connection
    sent = 0
    while sent < quota:
        if one_by_one:
            ids = _messages_claim(campaign_id, PEER_BATCH)
            for message in Message.objects.filter(pk__in=ids).order_by("pk"):
                message_submit(message=message)
            claimed = len(ids)
        else:
            claimed = campaign_dispatch_batch(campaign_id=campaign_id)
        if not claimed:
            break
        sent += claimed
    connections.close_all()


def _dispatch(
    campaign_id: int, workers: int, quota: int, *, one_by_one: bool = False
) -> float:
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_drain, args=(campaign_id, quota // workers, one_by_one))
        for _ in range(workers)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        assert process.exitcode == 0, "a dispatch worker failed"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--dispatch", type=int, default=10_000)
    parser.add_argument("--peer", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    arguments = parser.parse_args()
    os.environ["TMC_SIMULATOR_REPORT_DELAY"] = "0"
    os.environ.setdefault("TMC_GATEWAY_RATE", "1000000")
    label = django_start(arguments.database_url)
    logging.disable(logging.INFO)

    from huey.contrib.djhuey import HUEY

    from tmc.accounts.services import account_create, credits_add
    from tmc.messaging import campaigns
    from tmc.messaging.models import Message, SenderId

    # Delivery reports run in the dispatching worker, as part of its work;
    # the campaign's own dispatch tasks are not started: the runs below are.
    HUEY.immediate = True
    campaigns._enqueue = lambda *args: None  # type: ignore[assignment]

    organisation, controller = account_create(
        name="Bench Ltd",
        controller_username="bench",
        controller_email="bench@example.com",
        controller_password=PASSWORD,
        # A paying organisation: on the free trial only verified numbers go.
        trial=False,
    )
    SenderId.objects.create(
        organisation=organisation, value="Bench", is_approved=True, is_default=True
    )
    credits_add(organisation=organisation, amount=arguments.recipients, reason="Bench")
    numbers = _numbers(arguments.recipients)
    text = "\n".join(numbers)
    print(
        f"database: {label}; recipients: {arguments.recipients:,}; "
        f"list: {len(text) / 1e6:.1f} MB"
    )

    plain = _plain_insert(numbers, organisation.pk, controller.pk)
    print(
        f"plain executemany insert: {arguments.recipients / plain:,.0f} rows/s "
        f"({plain:.2f} s)"
    )

    started = time.perf_counter()
    campaign = campaigns.campaign_send(user=controller, numbers_text=text, body=BODY)
    took = time.perf_counter() - started
    assert campaign.recipient_count == arguments.recipients
    assert Message.objects.filter(campaign=campaign).count() == arguments.recipients
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"campaign acceptance (validate, dedupe, opt-outs, encrypt, insert): "
        f"{arguments.recipients / took:,.0f} rows/s ({took:.2f} s)"
    )
    print(f"ratio acceptance / plain insert: {plain / took:.2f} (target >= 0.5)")
    print(f"peak memory of the process: {peak:,.0f} MB")
    # After the acceptance, whose campaign its rows refer to.
    shaped = _shaped_insert(numbers, organisation.pk, controller.pk, campaign.pk)
    print(
        f"plain executemany into a table of the message table's shape: "
        f"{arguments.recipients / shaped:,.0f} rows/s ({shaped:.2f} s)"
    )
    print(f"ratio acceptance / plain executemany, same shape: {shaped / took:.2f}")

    print(
        f"dispatch: batches of {campaigns.DISPATCH_BATCH}, gateway limit "
        f"{float(os.environ['TMC_GATEWAY_RATE']):,.0f} messages/s"
    )

    def measure(workers: int, quota: int, *, one_by_one: bool = False) -> float:
        queued = Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED)
        before = queued.count()
        seconds = _dispatch(campaign.pk, workers, quota, one_by_one=one_by_one)
        sent = before - queued.count()
        rate = sent / seconds
        label = f"{workers} worker process{'es' if workers > 1 else ''}" + (
            ", one message a transaction (peer)" if one_by_one else ""
        )
        print(
            f"dispatch through the simulator, {label}: {rate:,.0f} messages/s "
            f"({sent:,} in {seconds:.2f} s)"
        )
        return rate

    peer = measure(2, arguments.peer, one_by_one=True)
    for workers in (1, 2, 4):
        rate = measure(workers, arguments.dispatch)
        if workers == 2:
            print(f"ratio 2 workers batched / peer: {rate / peer:.1f}")
    delivered = Message.objects.filter(
        campaign=campaign, status=Message.Status.DELIVERED
    ).count()
    print(f"delivered so far: {delivered:,} of {arguments.recipients:,}")


if __name__ == "__main__":
    main()
