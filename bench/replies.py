"""How fast replies are matched to their questions, and how soon owners hear.

    .venv/bin/python bench/replies.py [--tickets 100000] [--replies 100000]
        [--gateways 2] [--workers 2] [--batch 200] [--rate 0] [--backlog]
        [--floor 10000] [--database-url URL] [--redis-url URL]

Sets up ``--tickets`` open yes/no questions, one a recipient, spread over a
pool of three numbers (setup is not timed). Then ``--gateways`` processes
hand over ``--replies`` of those recipients' answers as a provider's
gateway would, each stored by ``inbound_accept`` (one sealed row, one
commit), at ``--rate`` replies a second in all (0: as fast as they go),
while ``--workers`` processes match them in batches of ``--batch`` with
``replies_match_pending``: the claim, one query for the batch's open
tickets, STOP/START, the rows moved to their organisation and sealed under
its key, answers read and recorded, single tickets closed, the owners'
in-app alerts and the activity events. With ``--backlog`` the workers
start only once every reply is stored, which times matching alone. With
``--redis-url`` the task queue and the "matching is queued" mark live in
Redis, as in a deployment on PostgreSQL; without it a task is queued in
the SQLite queue file for each text. Prints:

- the rate replies were accepted at;
- replies/s from the first arrival to the last alert committed;
- the p50 and p99 latency from a reply's arrival to the commit of its
  owner's alert (visible to the bell's next poll);
- the floor, measured in the same run: one process inserting ``--floor``
  sealed inbound rows, each INSERT committed by itself, the least a
  gateway's text costs.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_start

PASSWORD = "Bench-Horse-Battery-42"  # noqa: S105  # nosec B105
POOL = ["+447400900001", "+447400900002", "+447400900003"]
ANSWERS = ["yes", "Yes!", "no", "nope", "yeah", "maybe"]
# Texts matched so far by every worker, shared with the forked processes.
_MATCHED = multiprocessing.get_context("fork").Value("q", 0)


def _handset(n: int) -> str:
    return f"+4474{n:08d}"


def _setup(tickets: int) -> int:
    """Open questions to ``tickets`` handsets; return the question's id."""
    from django.db import connection, transaction

    from tmc.accounts import encryption
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
    for start in range(0, tickets, 500):
        batch = range(start, min(tickets, start + 500))
        # Keys are cached once a transaction commits: fetch them outside the
        # batch's transaction, or each seal inside it would query for them.
        encryption.encrypt(organisation.pk, "", context="bench")
        encryption.index(None, "")
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


def _gateway(args: tuple[list[int], float]) -> dict[int, float]:
    """Hand the given handsets' answers over as a gateway would.

    Each text is stored with ``inbound_accept`` (one sealed row, one commit)
    at ``rate`` texts a second (0: as fast as it goes). Returns each stored
    text's id with the wall-clock time it arrived.
    """
    handsets, rate = args
    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.db import connection

    from tmc.gateways.services import inbound_accept

    arrived: dict[int, float] = {}
    started = time.time()
    for position, n in enumerate(handsets):
        if rate:
            time.sleep(max(0.0, started + position / rate - time.time()))
        moment = time.time()
        inbound = inbound_accept(
            gateway="bench",
            sender=_handset(n),
            recipient=POOL[n % 3],
            body=ANSWERS[n % len(ANSWERS)],
        )
        arrived[inbound.pk] = moment
    connection.close()
    return arrived


def _matcher(args: tuple[int, int]) -> dict[int, float]:
    """Match waiting replies in batches until ``total`` have been matched.

    Returns each matched text's id with the wall-clock time its batch
    committed: the owner's alert is visible to the bell from then on.
    """
    total, batch = args
    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.db import connection

    from tmc.gateways.inbound import replies_match_pending

    committed: dict[int, float] = {}
    while True:
        ids = replies_match_pending(limit=batch)
        moment = time.time()
        for inbound_id in ids:
            committed[inbound_id] = moment
        if ids:
            with _MATCHED.get_lock():
                _MATCHED.value += len(ids)
            continue
        # Counted in shared memory: a COUNT over the inbound table each idle
        # turn would take the database's time from the work measured.
        if _MATCHED.value >= total:
            break
        time.sleep(0.005)
    connection.close()
    return committed


def _floor(count: int) -> float:
    """Bare single-row inserts of a sealed inbound text, each its own commit."""
    from django.utils import timezone

    from tmc.messaging.models import InboundMessage

    started = time.perf_counter()
    for n in range(count):
        inbound = InboundMessage(
            gateway="floor", recipient=POOL[n % 3], matched_at=timezone.now()
        )
        inbound.seal(sender=_handset(n), body="yes")
        inbound.save()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--replies", type=int, default=100_000)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--floor", type=int, default=10_000)
    parser.add_argument("--backlog", action="store_true")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    arguments = parser.parse_args()
    if arguments.redis_url:
        os.environ["TMC_REDIS_URL"] = arguments.redis_url
    else:
        os.environ.pop("TMC_REDIS_URL", None)
    label = django_start(arguments.database_url)
    logging.disable(logging.INFO)
    replies = min(arguments.replies, arguments.tickets)

    print(
        f"database: {label}; Redis: {'yes' if arguments.redis_url else 'no'}; "
        f"open tickets: {arguments.tickets:,}; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    started = time.perf_counter()
    question_id = _setup(arguments.tickets)
    print(f"setup: {time.perf_counter() - started:.1f} s (not counted)")

    gateways = [
        (
            list(range(g, replies, arguments.gateways)),
            arguments.rate / arguments.gateways,
        )
        for g in range(arguments.gateways)
    ]
    context = multiprocessing.get_context("fork")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tmc.settings"
    matchers = [(replies, arguments.batch)] * arguments.workers
    with context.Pool(arguments.gateways + arguments.workers) as pool:
        if arguments.backlog:
            arrivals = pool.map(_gateway, gateways)
            matching_started = time.time()
            commits = pool.map(_matcher, matchers)
        else:
            matching = pool.map_async(_matcher, matchers)
            arrivals = pool.map(_gateway, gateways)
            commits = matching.get()
    arrived = {k: v for part in arrivals for k, v in part.items()}
    committed = {k: v for part in commits for k, v in part.items()}
    assert sorted(arrived) == sorted(committed), "a reply was lost or doubled"
    first, last_in = min(arrived.values()), max(arrived.values())
    elapsed = max(committed.values()) - first
    latencies = sorted(committed[k] - arrived[k] for k in arrived)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000

    from tmc.boomerang.models import Answer
    from tmc.notifications.models import Notification

    answered = Answer.objects.filter(ticket__question_id=question_id).count()
    alerts = Notification.objects.filter(kind="reply_received").count()
    assert answered == replies, (answered, replies)
    assert alerts == replies, (alerts, replies)
    rate = replies / elapsed
    paced = f"paced at {arguments.rate:,.0f}/s" if arguments.rate else "unpaced"
    print(
        f"accepted: {replies:,} by {arguments.gateways} gateway process(es), "
        f"{paced}: {replies / (last_in - first):,.0f} replies/s"
    )
    print(
        f"matched: {replies:,} by {arguments.workers} worker(s) in batches of "
        f"{arguments.batch}, {elapsed:.1f} s from first arrival to last alert = "
        f"{rate:,.0f} replies/s (target >= 1,000 on PostgreSQL)"
    )
    if arguments.backlog:
        drained = max(committed.values()) - matching_started
        print(
            f"matching alone, the backlog drained in {drained:.1f} s = "
            f"{replies / drained:,.0f} replies/s (the arrival-to-alert times "
            "include the wait for the backlog)"
        )
    print(
        f"arrival to committed alert: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        "(target p99 < 200 ms)"
    )

    floor = _floor(arguments.floor)
    print(
        f"floor, bare sealed inserts with a commit each, one process: {floor:,.0f}/s; "
        f"replies end to end reach {rate / floor:.2f} of it"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if arguments.redis_url:
        from huey.contrib.djhuey import HUEY

        # The tasks the gateways queued; nothing here consumes them.
        HUEY.flush()


if __name__ == "__main__":
    main()
