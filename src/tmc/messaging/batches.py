"""Submitting claimed messages a batch at a time: how campaigns are sent.

The rules are those of ``services.message_submit`` (the route's gateways in
order, one that is down skipped, one at its throughput limit waited for a
little and then passed over, one that fails for now marked down and the next
tried; a permanent refusal fails and refunds; when every gateway failed for
now, a retry later), applied to many messages at once:

- one ``Gateway.submit_batch`` call per gateway and bucketful of throughput
  tokens, and one UPDATE … FROM (VALUES …) recording every answer, in one
  transaction with the gateway's own record of the batch (the simulator's
  rows, the SMPP parts queued);
- permanent refusals closed with one UPDATE per reason and refunded with
  one ledger entry per organisation and campaign;
- retries scheduled with one UPDATE.

Crash safety is the one-message path's, a batch wide: a worker killed
mid-batch leaves that batch SUBMITTING, and the reconciler asks each
gateway's record whether it took each message rather than sending it again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from tmc.accounts.models import CreditLedgerEntry, Organisation
from tmc.accounts.services import credits_add
from tmc.gateways.base import Gateway, GatewayError, Submission, SubmitResult
from tmc.gateways.registry import gateway_named
from tmc.gateways.services import message_statuses_notify
from tmc.lib.segments import Encoding
from tmc.messaging.models import ERASED, Message
from tmc.messaging.services import EXPIRED_REASON, retry_delay
from tmc.routing.services import (
    gateway_failed,
    gateway_succeeded,
    gateways_down,
    routes_gateways,
)
from tmc.routing.throughput import throughput_acquire_many

logger = logging.getLogger(__name__)

ERASED_REASON = "The organisation's data was erased."
Outcomes = dict[int, Message.Status]


def messages_submit_batch(*, messages: Sequence[Message]) -> Outcomes:
    """Hand messages this worker has claimed (SUBMITTING) to their gateways.

    Returns each message's new status.
    """
    assert all(m.status == Message.Status.SUBMITTING for m in messages)
    now = timezone.now()
    outcomes: Outcomes = {}

    erased = [m.pk for m in messages if m.recipient == ERASED]
    if erased:
        # Nothing to refund: erasure closed the account's money matters.
        Message.objects.filter(pk__in=erased).update(
            status=Message.Status.FAILED,
            failure_reason=ERASED_REASON,
            completed_at=now,
        )
        outcomes.update(dict.fromkeys(erased, Message.Status.FAILED))
    live = [m for m in messages if m.pk not in outcomes]
    expired = {
        m.pk: EXPIRED_REASON
        for m in live
        if m.expires_at is not None and m.expires_at <= now
    }
    messages_close_batch(reasons=expired, status=Message.Status.EXPIRED)
    outcomes.update(dict.fromkeys(expired, Message.Status.EXPIRED))
    live = [m for m in live if m.pk not in expired]

    routes = routes_gateways(numbers={m.recipient for m in live})
    by_route: dict[tuple[str, ...], list[Message]] = defaultdict(list)
    for message in live:
        by_route[tuple(routes[message.recipient])].append(message)
    for names, group in by_route.items():
        outcomes.update(_route_submit(names, group))
    return outcomes


def _route_submit(names: Sequence[str], messages: list[Message]) -> Outcomes:
    """Submit messages sharing a route through its gateways, in order."""
    outcomes: Outcomes = {}
    waiting = messages
    down = gateways_down(names=names)
    reason = "Every gateway on the route is down."
    for name in names:
        if not waiting:
            break
        if name in down:
            continue
        gateway = gateway_named(name)
        while waiting:
            # Tokens for the whole batch at once when the bucket holds them,
            # else a bucketful at a time: the limit is shared by every worker.
            granted = throughput_acquire_many(name=name, count=len(waiting))
            if not granted:
                reason = "Every gateway on the route is busy."
                break
            chunk, waiting = waiting[:granted], waiting[granted:]
            try:
                refused = _chunk_submit(gateway, chunk, outcomes)
            except GatewayError as exc:
                logger.warning(
                    "gateway refused a batch gateway=%s count=%s", name, len(chunk)
                )
                gateway_failed(name=name)
                reason = exc.reason
                waiting = chunk + waiting
                break
            if len(refused) < len(chunk):
                gateway_succeeded(name=name)
            messages_close_batch(
                reasons={m.pk: e.reason for m, e in refused if e.permanent},
                status=Message.Status.FAILED,
                gateway=name,
            )
            outcomes.update(
                (m.pk, Message.Status.FAILED) for m, e in refused if e.permanent
            )
            failing = [(m, e) for m, e in refused if not e.permanent]
            if failing:
                # Down for now: what is left tries the next gateway.
                gateway_failed(name=name)
                reason = failing[0][1].reason
                waiting = [m for m, _ in failing] + waiting
                break
    outcomes.update(_retry_later_batch(waiting, reason))
    return outcomes


def _chunk_submit(
    gateway: Gateway, chunk: Sequence[Message], outcomes: Outcomes
) -> list[tuple[Message, GatewayError]]:
    """Submit and record one chunk; return the messages refused, with why."""
    submissions = [
        Submission(
            message_id=m.pk,
            sender=m.sender,
            recipient=m.recipient,
            body=m.body,
            encoding=Encoding(m.encoding),
            parts=m.parts,
        )
        for m in chunk
    ]
    with transaction.atomic():
        answers = gateway.submit_batch(submissions)
        assert len(answers) == len(chunk)
        taken = [
            (m.pk, answer)
            for m, answer in zip(chunk, answers, strict=True)
            if isinstance(answer, SubmitResult)
        ]
        submitted = [(pk, a.provider_message_id) for pk, a in taken if not a.pending]
        recorded = _rows_update(
            rows=submitted,
            columns=["provider_message_id"],
            fixed={
                "status": str(Message.Status.SUBMITTED),
                "gateway": gateway.name,
                "submitted_at": timezone.now(),
                "next_attempt_at": None,
            },
        )
        pending = [pk for pk, answer in taken if answer.pending]
        if pending:
            # The adapter's own connection records the outcome later.
            recorded += Message.objects.filter(
                pk__in=pending, status=Message.Status.SUBMITTING
            ).update(gateway=gateway.name, next_attempt_at=None)

    if recorded < len(taken):
        # Only the reconciler moves a claimed message, after
        # TMC_RECONCILE_AFTER_SECONDS; a batch that slow is reported.
        logger.error(
            "messages reconciled while submitting count=%s", len(taken) - recorded
        )
    for pk, answer in taken:
        outcomes[pk] = (
            Message.Status.SUBMITTING if answer.pending else Message.Status.SUBMITTED
        )
    logger.info(
        "messages submitted gateway=%s count=%s refused=%s",
        gateway.name,
        len(taken),
        len(chunk) - len(taken),
    )
    return [
        (m, answer)
        for m, answer in zip(chunk, answers, strict=True)
        if isinstance(answer, GatewayError)
    ]


def _retry_later_batch(messages: Sequence[Message], reason: str) -> Outcomes:
    """Schedule another attempt for each message, or fail it past the last."""
    last = settings.TMC_RETRY_MAX_ATTEMPTS
    exhausted = {
        m.pk: f"Not sent after {m.attempts + 1} attempts: {reason}"
        for m in messages
        if m.attempts + 1 >= last
    }
    messages_close_batch(reasons=exhausted, status=Message.Status.FAILED)

    now = timezone.now()
    retrying = [m for m in messages if m.pk not in exhausted]
    _rows_update(
        rows=[
            # Each its own jittered delay, so they do not all return at once.
            (m.pk, m.attempts + 1, now + retry_delay(m.attempts + 1))
            for m in retrying
        ],
        columns=["attempts", "next_attempt_at"],
        fixed={
            "status": str(Message.Status.RETRYING),
            "failure_reason": reason[:200],
            "submitting_since": None,
        },
    )
    if retrying:
        logger.info("messages to retry count=%s", len(retrying))
    return {
        **dict.fromkeys(exhausted, Message.Status.FAILED),
        **dict.fromkeys((m.pk for m in retrying), Message.Status.RETRYING),
    }


def messages_close_batch(
    *,
    reasons: Mapping[int, str],
    status: Message.Status,
    gateway: str = "",
    from_statuses: Collection[Message.Status] = (Message.Status.SUBMITTING,),
) -> list[int]:
    """Fail or expire messages no gateway took, and refund them; return ids closed.

    ``message_close`` for many: ``reasons`` maps each message to its reason.
    Only messages in ``from_statuses`` are closed and refunded; the credits
    go back with one ledger entry per organisation and campaign.
    """
    assert status in {Message.Status.FAILED, Message.Status.EXPIRED}
    assert set(from_statuses) <= Message.UNSENT_STATUSES
    if not reasons:
        return []
    with transaction.atomic():
        # Locked, then changed: of two workers closing one message at once,
        # the second finds it closed and neither changes nor refunds it.
        rows = list(
            Message.objects.select_for_update()
            .filter(pk__in=list(reasons), status__in=list(from_statuses))
            .values_list("pk", "organisation_id", "campaign_id", "credits")
        )
        by_reason: dict[str, list[int]] = defaultdict(list)
        for pk, *_ in rows:
            by_reason[reasons[pk][:200]].append(pk)
        changes: dict[str, Any] = {
            "status": status,
            "completed_at": timezone.now(),
            "next_attempt_at": None,
        }
        if gateway:
            changes["gateway"] = gateway
        for reason, ids in by_reason.items():
            Message.objects.filter(pk__in=ids).update(failure_reason=reason, **changes)
        _refund(rows)
        message_statuses_notify([(pk, organisation) for pk, organisation, *_ in rows])
    if rows:
        logger.info("messages %s and refunded count=%s", status, len(rows))
    return [pk for pk, *_ in rows]


def _refund(rows: Iterable[tuple[int, int, int | None, int]]) -> None:
    """One refund per organisation and campaign of (id, org, campaign, credits)."""
    totals: dict[tuple[int, int | None], list[int]] = defaultdict(lambda: [0, 0])
    for _, organisation_id, campaign_id, credits in rows:
        # A message sent free of charge (charge=False) has nothing to refund.
        if credits:
            total = totals[organisation_id, campaign_id]
            total[0] += credits
            total[1] += 1
    for (organisation_id, campaign_id), (credits, count) in totals.items():
        what = f"{count} message{'s' if count > 1 else ''}"
        if campaign_id is not None:
            what += f" of campaign {campaign_id}"
        credits_add(
            organisation=Organisation.objects.get(pk=organisation_id),
            amount=credits,
            kind=CreditLedgerEntry.Kind.REFUND,
            reason=f"Refund for {what}",
        )


def _rows_update(
    *, rows: Sequence[tuple[Any, ...]], columns: Sequence[str], fixed: Mapping[str, Any]
) -> int:
    """Update SUBMITTING messages each with values of its own, in one statement.

    ``rows`` are (message id, a value for each of ``columns``); the
    ``fixed`` columns take one value for all. Returns how many changed. The
    ORM has no UPDATE … FROM (VALUES …), and an UPDATE per message would be
    a round trip each.
    """
    if not rows:
        return 0
    quote = connection.ops.quote_name
    table = quote(Message._meta.db_table)
    names = ["id", *columns]
    fields = {name: _field(name) for name in [*names, *fixed]}

    postgresql = connection.vendor == "postgresql"

    def column_value(name: str) -> str:
        if not postgresql:
            # SQLite names a VALUES list's columns column1, column2, ...
            return f"given.column{names.index(name) + 1}"
        # PostgreSQL types the VALUES list from its literals: cast each to
        # its column's type.
        return f"CAST(given.{quote(name)} AS {fields[name].db_type(connection)})"

    assignments = [f"{quote(fields[n].column)} = {column_value(n)}" for n in columns]
    assignments += [f"{quote(fields[n].column)} = %s" for n in fixed]
    row = f"({', '.join(['%s'] * len(names))})"
    alias = f"given ({', '.join(quote(n) for n in names)})" if postgresql else "given"
    # Names come from the model, values are parameters. No WITH: SQLite's
    # driver counts the rows changed only for a statement starting UPDATE.
    sql = (
        f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608  # nosec B608
        f"FROM (VALUES {', '.join([row] * len(rows))}) AS {alias} "
        f"WHERE {table}.{quote('id')} = {column_value('id')} "
        f"AND {table}.{quote('status')} = %s"
    )
    # In the order of the placeholders: SET, then VALUES.
    params: list[Any] = [
        fields[name].get_db_prep_value(value, connection, prepared=False)
        for name, value in fixed.items()
    ]
    params += [
        fields[name].get_db_prep_value(value, connection, prepared=False)
        for values in rows
        for name, value in zip(names, values, strict=True)
    ]
    params.append(str(Message.Status.SUBMITTING))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _field(name: str) -> Field[Any, Any]:
    field = Message._meta.get_field(name)
    assert isinstance(field, Field)
    return field
