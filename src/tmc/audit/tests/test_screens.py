"""The activity pages: the organisation's log, its export, a user's log-ins.

"C3" marks the control-area rule (second password first); "C11" the log
itself; "C7" the restrictable export permission.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tmc.audit.models import Event
from tmc.audit.services import details_mask, event_record
from tmc.identity.models import User
from tmc.testing import PASSWORD, Tenant

ACTIVITY = reverse("audit:activity")
EXPORT = reverse("audit:activity_csv")
MINE = reverse("audit:my_logins")


def _csv(response: Any) -> list[list[str]]:
    content = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(content)))


def test_the_log_filters_by_action_actor_and_dates(tenant_a: Tenant) -> None:
    """C11: managers find events by what, who and when."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)
    event_record(action="user.updated", actor=tenant_a.administrator)
    old = event_record(action="user.updated", actor=tenant_a.user)
    Event.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    today = timezone.localdate()

    def shown(**query: Any) -> set[tuple[str, str]]:
        response = client.get(ACTIVITY, query)
        assert response.status_code == 200
        return {(e.action, e.actor_label) for e in response.context["events"]}

    assert shown(action="user.updated") == {
        ("user.updated", "user:acme-admin"),
        ("user.updated", "user:acme-user"),
    }
    assert shown(action="user.", actor="acme-user") == {
        ("user.updated", "user:acme-user")
    }
    recent = shown(action="user.updated", date_from=today - timedelta(days=1))
    assert recent == {("user.updated", "user:acme-admin")}
    assert shown(action="user.updated", date_to=today - timedelta(days=30)) == {
        ("user.updated", "user:acme-user")
    }


def test_a_backwards_date_range_is_a_field_error(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = client.get(
        ACTIVITY, {"date_from": "2026-02-01", "date_to": "2026-01-01"}
    )

    assert response.status_code == 200
    assert "The end comes before the start." in response.content.decode()


def test_the_log_shows_only_the_own_organisation(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """C11 with tenancy: another organisation's events never show."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = client.get(ACTIVITY)

    organisations = {e.organisation_id for e in response.context["events"]}
    assert organisations == {tenant_a.organisation.pk}
    assert b"globex" not in response.content


@pytest.mark.parametrize("role", ["user"])
def test_users_cannot_open_the_log(tenant_a: Tenant, role: str) -> None:
    """C3: the log is a control area for Controllers and Administrators."""
    client = tenant_a.client_for(getattr(tenant_a, role))

    assert client.get(ACTIVITY).status_code == 403
    assert client.get(EXPORT).status_code == 403


def test_the_log_asks_for_the_second_password_first(tenant_a: Tenant) -> None:
    """C3: reports and the activity log sit behind the second password."""
    client = tenant_a.client_for(tenant_a.controller)

    for page in (ACTIVITY, EXPORT):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("identity:second_factor"))
    assert not Event.objects.filter(action="activity.exported").exists()


def test_the_export_holds_the_filtered_events_and_is_itself_logged(
    tenant_a: Tenant,
) -> None:
    """C11: the CSV export carries the filtered log, and the export is an event."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)
    expected = Event.objects.filter(
        organisation=tenant_a.organisation, action__startswith="user."
    ).count()

    response = client.get(EXPORT, {"action": "user."})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    header, *rows = _csv(response)
    assert header[:4] == ["when", "actor_kind", "actor", "action"]
    assert len(rows) == expected
    assert {row[3] for row in rows} == {"user.created"}
    export = Event.objects.get(action="activity.exported")
    assert export.actor_id == tenant_a.controller.pk
    assert export.details == {"filters": {"action": "user."}, "rows": expected}


def test_exporting_needs_the_export_permission(tenant_a: Tenant) -> None:
    """C7: export is a restrictable permission, on top of seeing the log."""
    User.objects.filter(pk=tenant_a.administrator.pk).update(can_export=False)
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    assert client.get(ACTIVITY).status_code == 200
    assert b"Export CSV" not in client.get(ACTIVITY).content
    assert client.get(EXPORT).status_code == 403
    assert not Event.objects.filter(action="activity.exported").exists()


def test_the_export_defuses_spreadsheet_formulas(tenant_a: Tenant) -> None:
    """ASVS (V1.2.10): a cell a client controls cannot run as a formula."""
    Client(HTTP_USER_AGENT='=HYPERLINK("http://evil.example")').post(
        "/login/", {"username": "acme-user", "password": PASSWORD}
    )
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    _, *rows = _csv(client.get(EXPORT, {"action": "login.succeeded"}))

    agents = {row[8] for row in rows}
    assert '\'=HYPERLINK("http://evil.example")' in agents
    assert not any(agent.startswith("=") for agent in agents)


# --- a user's own log-ins ------------------------------------------------------------


def test_every_user_sees_their_own_log_in_history_only(tenant_a: Tenant) -> None:
    """C11: users see their own log-ins, failures and log-outs."""
    Client().post("/login/", {"username": "acme-user", "password": "Wrong-1x"})
    Client().post("/login/", {"username": "acme-admin", "password": "Wrong-1x"})
    client = tenant_a.client_for(tenant_a.user)

    response = client.get(MINE)

    assert response.status_code == 200
    events = list(response.context["events"])
    assert {e.action for e in events} == {"login.failed", "login.succeeded"}
    assert {e.actor_id for e in events} == {tenant_a.user.pk}
    account = client.get(reverse("identity:account")).content.decode()
    assert f'href="{MINE}"' in account


# --- what goes into an event -------------------------------------------------------


def test_confidential_details_are_masked() -> None:
    """C11 with DB rules: no passwords, tokens, bodies or full numbers."""
    masked = details_mask(
        {
            "new_password": "Corr3ct-Horse",
            "device_token": "abc123",
            "body": "Meet at noon",
            "recipient": "+447400123456",
            "note": "call 07400 123456",
            "contact": "07400 123456",
            "nested": {"reset_token": "xyz", "count": 3},
            "second_password_required": True,
            "idle_minutes": 15,
            "reason": "ticket 4411 on 2026-12-03T10:15",
        }
    )

    assert masked["new_password"] == "[masked]"
    assert masked["device_token"] == "[masked]"
    assert masked["body"] == "[masked]"
    assert masked["nested"] == {"reset_token": "[masked]", "count": 3}
    assert masked["recipient"].startswith("+44 7400 1")
    assert "123456" not in masked["recipient"]
    assert masked["contact"] == "\u2022" * 9 + "56"
    assert masked["note"] == "call " + "\u2022" * 9 + "56"
    assert masked["second_password_required"] is True
    assert masked["idle_minutes"] == 15
    assert masked["reason"] == "ticket 4411 on 2026-12-03T10:15"


def test_every_response_carries_a_request_id(db: None) -> None:
    """A request id links a response to its events and log lines."""
    client = Client()

    first = client.get(reverse("identity:login"))
    second = client.get(reverse("identity:login"))
    kept = client.get(reverse("identity:login"), HTTP_X_REQUEST_ID="lb-1234-abcd")
    refused = client.get(
        reverse("identity:login"), HTTP_X_REQUEST_ID="bad id\r\nSet-Cookie: x=1"
    )

    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert kept["X-Request-ID"] == "lb-1234-abcd"
    assert len(refused["X-Request-ID"]) == 32
    assert "Set-Cookie" not in refused["X-Request-ID"]
