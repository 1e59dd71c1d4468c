"""A worker killed mid-campaign: every message still reaches the gateway once.

Real worker processes (``tmc worker``) on the configured database and queue,
the first killed with SIGKILL part-way through a campaign; a second one and
the reconciler then finish it. The simulator's record (``SimulatedDelivery``)
is the gateway's side of the wire, counted per platform message id.
"""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from tmc.gateways.simulator.models import SimulatedDelivery
from tmc.messaging.campaigns import campaign_send
from tmc.messaging.models import Campaign, Message
from tmc.messaging.recovery import messages_reconcile
from tmc.testing import make_tenant, wait_until

# 10,000 messages take about 50 s on SQLite and 70 to 90 s on PostgreSQL on
# two shared cores; the normal suite sends 2,000. Set TMC_CRASH_TEST_MESSAGES
# to run the full size.
MESSAGES = int(os.environ.get("TMC_CRASH_TEST_MESSAGES", "2000"))


def _database_url() -> str:
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    password = f":{config['PASSWORD']}" if config["PASSWORD"] else ""
    return (
        f"postgres://{config['USER']}{password}@{config['HOST'] or 'localhost'}"
        f":{config['PORT'] or 5432}/{config['NAME']}"
    )


class Workers:
    """Start ``tmc worker`` processes on the test database and queue."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "TMC_DATABASE_URL": _database_url(),
            # Reports would only add work; the messages stay SUBMITTED.
            "TMC_SIMULATOR_REPORT_DELAY": "3600",
            "TMC_GATEWAY_RATE": "1000000",
        }

    def start(self) -> subprocess.Popen[bytes]:
        tmc = Path(sys.executable).parent / "tmc"
        log = (self.log_dir / f"worker-{len(self.running)}.log").open("wb")
        process = subprocess.Popen(  # nosec B603
            [str(tmc), "worker", "--workers", "2", "--worker-type", "thread", "-n"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(transactional_db: None) -> Iterator[Workers]:
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = False
    HUEY.flush()
    with tempfile.TemporaryDirectory(prefix="tmc-workers-") as logs:
        started = Workers(Path(logs))
        try:
            yield started
        finally:
            started.stop_all()
            HUEY.flush()


def _sent() -> int:
    return SimulatedDelivery.objects.count()


def test_a_worker_killed_mid_campaign_leaves_every_message_sent_once(
    workers: Workers, settings: Any
) -> None:
    tenant = make_tenant("Crashco", credits=MESSAGES)
    numbers = "\n".join(f"+4474{n:08d}" for n in range(MESSAGES))
    campaign = campaign_send(user=tenant.user, numbers_text=numbers, body="Once")

    first = workers.start()
    wait_until(lambda: _sent() >= MESSAGES // 3, timeout=120, interval=0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = timezone.now()
    left = Message.objects.filter(
        status__in=[Message.Status.QUEUED, Message.Status.SUBMITTING]
    ).count()
    claimed = Message.objects.filter(status=Message.Status.SUBMITTING).count()
    assert left > 0, "the worker finished before it was killed"

    workers.start()
    # Claims older than the kill were the dead worker's; the new worker's
    # own claims are younger and left alone.
    reconciled = messages_reconcile(stale_before=killed_at)
    assert reconciled.submitted + reconciled.requeued == claimed

    def finished() -> bool:
        return (
            Message.objects.filter(campaign=campaign)
            .exclude(status__in=[Message.Status.SUBMITTED, Message.Status.DELIVERED])
            .count()
            == 0
        )

    wait_until(finished, timeout=300, interval=0.5)
    per_message = (
        SimulatedDelivery.objects.values("message_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    assert per_message.count() == MESSAGES
    assert not per_message.filter(n__gt=1).exists()
    assert set(per_message.values_list("message_id", flat=True)) == set(
        Message.objects.filter(campaign=campaign).values_list("pk", flat=True)
    )
    wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DONE,
        timeout=30,
    )
    tenant.organisation.refresh_from_db()
    assert tenant.organisation.credit_balance == 0
