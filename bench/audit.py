"""How fast the activity log writes and verifies, and what it adds to actions.

    .venv/bin/python bench/audit.py [--events 1000000] [--database-url URL]

Prints:
- the cost of recording on real actions (a one-to-one text and a user's
  permission change), each timed with recording on and off in the same run;
- events/s writing ``--events`` events across ten organisations' chains;
- events/s for ``tmc audit verify``'s walk over all of them.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_start

ORGANISATIONS = 10
PASSWORD = "Bench-Horse-Battery-42"  # noqa: S105  # nosec B105


def _overhead(name: str, action: Callable[[int], None], repeats: int) -> None:
    """Time ``action`` with events recorded and with recording switched off.

    Two ways off: without the write (``_append``: the chain head, the hash,
    the insert), and without any of ``event_record`` (masking the details
    and building the event too). The modes take turns two actions at a time
    (so each mode sees both halves of an action that alternates), which
    spreads drift and the other work on the machine evenly over them.
    """
    import tmc.audit.services as audit

    real_append, real_record = audit._append, audit.event_record
    recorders = [
        module
        for module in list(sys.modules.values())
        if getattr(module, "event_record", None) is real_record
    ]

    def skip(*arguments: Any, **keywords: Any) -> None:
        return None

    def switch(mode: str) -> None:
        audit._append = skip if mode == "no write" else real_append  # type: ignore[assignment]
        for module in recorders:
            module.event_record = skip if mode == "no log" else real_record  # type: ignore[attr-defined]

    modes = ("log", "no write", "no log")
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    action(0)  # warm caches (keys, templates) outside the measurement
    for number in range(len(modes) * 2 * repeats):
        mode = modes[(number // 2) % len(modes)]
        switch(mode)
        started = time.perf_counter()
        action(number)
        times[mode].append(time.perf_counter() - started)
    switch("log")

    # The mean, less the slowest 2% of each mode: a process preempted by the
    # machine's other work is noise, not the log's cost.
    def mean(samples: list[float]) -> float:
        kept = sorted(samples)[: max(1, len(samples) * 98 // 100)]
        return sum(kept) / len(kept)

    on, no_write, no_log = (mean(times[mode]) for mode in modes)
    print(
        f"{name}: {1 / no_log:,.0f}/s without the log, {1 / no_write:,.0f}/s "
        f"without its write, {1 / on:,.0f}/s with it: writing adds "
        f"{(on - no_write) / no_write:.1%}, the whole record "
        f"{(on - no_log) / no_log:.1%} (target < 20%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    arguments = parser.parse_args()
    label = django_start(arguments.database_url)
    # One log line per event would time the terminal, not the log.
    logging.disable(logging.INFO)

    from django.db import transaction

    from tmc.accounts.services import account_create, credits_add
    from tmc.audit.models import ChainHead, Event
    from tmc.audit.services import chains_verify, event_record
    from tmc.identity.models import Permission, Role
    from tmc.identity.services import UserChanges, user_create, user_update
    from tmc.messaging.models import SenderId
    from tmc.messaging.services import message_send

    print(f"database: {label}")
    organisations = []
    for number in range(ORGANISATIONS):
        organisation, controller = account_create(
            name=f"Bench {number}",
            controller_username=f"bench-{number}",
            controller_email=f"bench-{number}@example.com",
            controller_password=PASSWORD,
            trial=False,
        )
        organisations.append((organisation, controller))
    organisation, controller = organisations[0]
    SenderId.objects.create(
        organisation=organisation, value="Bench", is_approved=True, is_default=True
    )
    credits_add(organisation=organisation, amount=10_000_000, reason="Bench")
    user = user_create(
        organisation=organisation,
        username="bench-user",
        email="user@example.com",
        password=PASSWORD,
        role=Role.USER,
    )

    def send(number: int) -> None:
        message_send(
            user=controller, recipient=f"+4474{number % 100_000_000:08d}", body="Hi"
        )

    def permission_change(number: int) -> None:
        granted = {Permission.EXPORT.value} if number % 2 else set()
        user_update(
            actor=controller,
            target=user,
            changes=UserChanges(
                role=Role.USER,
                full_name="Bench User",
                email="user@example.com",
                permissions=frozenset(granted),
                daily_message_limit=None,
                monthly_message_limit=None,
            ),
        )

    for name, action in (
        ("send one text", send),
        ("change a permission", permission_change),
    ):
        _overhead(name, action, arguments.actions)

    # The chains are verified with what the next step writes; start them anew.
    Event.objects.all().delete()
    ChainHead.objects.all().delete()
    started = time.perf_counter()
    written = 0
    while written < arguments.events:
        with transaction.atomic():
            for _ in range(min(arguments.batch, arguments.events - written)):
                owner, actor = organisations[written % ORGANISATIONS]
                event_record(
                    action="contact.updated",
                    organisation=owner,
                    actor=actor,
                    target=actor,
                    details={"fields": {"name": {"before": "A", "after": "B"}}},
                )
                written += 1
    elapsed = time.perf_counter() - started
    print(
        f"write: {written:,} events in {elapsed:.1f} s = {written / elapsed:,.0f} "
        f"events/s ({arguments.batch} per transaction)"
    )

    started = time.perf_counter()
    report = chains_verify()
    elapsed = time.perf_counter() - started
    # The process's high-water mark: tracemalloc would slow the walk itself.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert report.ok, report.problems
    print(
        f"verify: {report.events:,} events in {report.chains} chains in "
        f"{elapsed:.1f} s = {report.events / elapsed:,.0f} events/s "
        f"(target > 50,000); peak memory of the process {peak / 2**20:.0f} MB"
    )


if __name__ == "__main__":
    main()
