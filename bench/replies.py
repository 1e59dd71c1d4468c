"""How fast replies are matched to their questions, and how soon owners hear.

    .venv/bin/python bench/replies.py [--tickets 100000] [--replies 100000]
        [--workers 2] [--database-url URL]

Sets up ``--tickets`` open yes/no questions, one a recipient, spread over a
pool of three numbers (setup is not timed), then sends ``--replies`` of those
recipients' answers through ``inbound_receive``, the path every gateway's
inbound texts take: STOP/START check, ticket match under a row lock, the
sealed inbound row, the answer read and recorded, the activity-log event and
the owner's in-app alert, each reply in its own transaction. Prints:

- replies/s with ``--workers`` processes sharing the replies;
- the p50 and p99 latency from a reply's arrival to its owner's alert being
  committed (visible to the bell's next poll);
- replies/s of the floor: the same number of bare single-row inserts of the
  sealed inbound text, one transaction each, in the same run.

Targets: at least 1,000 replies/s on PostgreSQL and a p99 under 200 ms.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_start

PASSWORD = "Bench-Horse-Battery-42"  # noqa: S105  # nosec B105
POOL = ["+447400900001", "+447400900002", "+447400900003"]
ANSWERS = ["yes", "Yes!", "no", "nope", "yeah", "maybe"]


def _handset(n: int) -> str:
    return f"+4474{n:08d}"


def _setup(tickets: int) -> int:
    """Open questions to ``tickets`` handsets; return the question's id."""
    from django.db import connection, transaction

    from tmc.accounts.encryption import index
    from tmc.accounts.services import account_create, credits_add
    from tmc.boomerang.answers import Kind
    from tmc.boomerang.models import ConversationEntry, Ticket
    from tmc.boomerang.services import numbers_add, question_create
    from tmc.messaging.models import Message

    organisation, controller = account_create(
        name="Bench Ltd",
        controller_username="bench",
        controller_email="bench@example.com",
        controller_password=PASSWORD,
    )
    credits_add(organisation=organisation, amount=10_000_000, reason="Bench")
    numbers = numbers_add(numbers=POOL)
    question = question_create(user=controller, title="Saturday", kind=Kind.YES_NO)
    body = "Can you work Saturday? Reply YES or NO"
    for start in range(0, tickets, 2000):
        batch = range(start, min(tickets, start + 2000))
        with transaction.atomic():
            messages = []
            for n in batch:
                message = Message(
                    organisation=organisation,
                    created_by=controller,
                    sender=POOL[n % 3],
                    encoding="GSM-7",
                    parts=1,
                    credits=1,
                    status=Message.Status.DELIVERED,
                )
                message.seal(recipient=_handset(n), body=body)
                messages.append(message)
            Message.objects.bulk_create(messages)
            made = Ticket.objects.bulk_create(
                Ticket(
                    organisation=organisation,
                    message=message,
                    question=question,
                    virtual_number=numbers[n % 3],
                    recipient_route=index(None, _handset(n)),
                )
                for n, message in zip(batch, messages, strict=True)
            )
            ConversationEntry.objects.bulk_create(
                ConversationEntry(
                    organisation=organisation, ticket=t, message=t.message
                )
                for t in made
            )
    connection.close()
    return int(question.pk)


def _reply_worker(args: tuple[list[int], Any]) -> list[float]:
    """Answer for the given handsets; return each reply's latency in seconds."""
    handsets, _ = args
    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.db import connection

    from tmc.gateways.services import inbound_receive

    latencies = []
    for n in handsets:
        arrived = time.perf_counter()
        # inbound_receive is atomic: when it returns, the alert is committed.
        inbound_receive(
            gateway="bench",
            sender=_handset(n),
            recipient=POOL[n % 3],
            body=ANSWERS[n % len(ANSWERS)],
        )
        latencies.append(time.perf_counter() - arrived)
    connection.close()
    return latencies


def _floor(replies: int) -> float:
    """Bare single-row inserts of a sealed inbound text, a transaction each."""
    from django.db import transaction

    from tmc.messaging.models import InboundMessage

    started = time.perf_counter()
    for n in range(replies):
        with transaction.atomic():
            inbound = InboundMessage(gateway="floor", recipient=POOL[n % 3])
            inbound.seal(sender=_handset(n), body="yes")
            inbound.save()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--replies", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default="")
    arguments = parser.parse_args()
    label = django_start(arguments.database_url)
    logging.disable(logging.INFO)
    replies = min(arguments.replies, arguments.tickets)

    print(f"database: {label}; open tickets: {arguments.tickets:,}")
    started = time.perf_counter()
    question_id = _setup(arguments.tickets)
    print(f"setup: {time.perf_counter() - started:.1f} s (not counted)")

    chunks = [
        list(range(worker, replies, arguments.workers))
        for worker in range(arguments.workers)
    ]
    context = multiprocessing.get_context("fork")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tmc.settings"
    started = time.perf_counter()
    with context.Pool(arguments.workers) as pool:
        results = pool.map(_reply_worker, [(chunk, None) for chunk in chunks])
    elapsed = time.perf_counter() - started
    latencies = sorted(latency for result in results for latency in result)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000

    from tmc.boomerang.models import Answer
    from tmc.notifications.models import Notification

    answered = Answer.objects.filter(ticket__question_id=question_id).count()
    alerts = Notification.objects.count()
    assert answered == replies, (answered, replies)
    assert alerts == replies, (alerts, replies)
    rate = replies / elapsed
    print(
        f"replies: {replies:,} matched with {arguments.workers} worker(s) in "
        f"{elapsed:.1f} s = {rate:,.0f} replies/s (target >= 1,000 on PostgreSQL)"
    )
    print(
        f"arrival to committed alert: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        "(target p99 < 200 ms)"
    )

    floor = _floor(replies)
    print(
        f"floor, bare sealed inserts in one process: {replies / floor:,.0f}/s; "
        f"matching with {arguments.workers} worker(s) reaches "
        f"{rate / (replies / floor):.2f} of it"
    )


if __name__ == "__main__":
    main()
