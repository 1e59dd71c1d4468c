"""Roles, restrictable permissions, granting, Controllers and message limits.

Each test proves one clause of the security policy, through the pages a
browser uses or through the services the pages call.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from tmc.identity.models import ROLE_DEFAULTS, Permission, Role, User
from tmc.identity.services import UserChanges, user_create, user_update
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.testing import PASSWORD, CommitCapture, Tenant

NUMBER = "07400 123456"
FULL_E164 = "+447400123456"
FULL_SHOWN = "+44 7400 123456"
MASKED_SHOWN = "+44 7400 1•••56"

CONTROL_AREAS = [
    "/users/",
    "/messages/report/",
    "/activity/",
    "/organisation/security/",
    "/organisation/sending/",
]


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


def _restrict(user: User, **fields: Any) -> None:
    User.objects.filter(pk=user.pk).update(**fields)


def _form(**overrides: Any) -> dict[str, Any]:
    """What the user form posts for a plain User who may send in bulk."""
    data: dict[str, Any] = {
        "username": "acme-new",
        "full_name": "New Person",
        "email": "new@acme.example",
        "role": Role.USER.value,
        "permissions": [Permission.SEND_BULK.value],
        "daily_message_limit": "",
        "monthly_message_limit": "",
        "is_active": "on",
    }
    data.update(overrides)
    return data


def _changes(user: User, **overrides: Any) -> UserChanges:
    """The changes that leave ``user`` as they are, except ``overrides``."""
    values: dict[str, Any] = {
        "role": user.role,
        "full_name": user.full_name,
        "email": user.email,
        "permissions": user.permissions(),
        "daily_message_limit": user.daily_message_limit,
        "monthly_message_limit": user.monthly_message_limit,
        "is_active": user.is_active,
    }
    values.update(overrides)
    return UserChanges(**values)


def _form_errors(response: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = response.context["form"].errors
    return errors


# --- three roles -------------------------------------------------------------


def test_a_user_is_refused_every_control_area(tenant_a: Tenant) -> None:
    """Policy: three roles; Users have no control areas."""
    client = tenant_a.client_for(tenant_a.user)

    for path in CONTROL_AREAS:
        assert client.get(path).status_code == 403, path


def test_an_administrator_reaches_users_but_not_organisation_security(
    tenant_a: Tenant,
) -> None:
    """Policy: three roles; organisation security is for the Controller only."""
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    assert client.get("/users/").status_code == 200
    assert client.get("/messages/report/").status_code == 200
    assert client.get("/activity/").status_code == 200
    assert client.get("/organisation/security/").status_code == 403


def test_the_controller_reaches_every_control_area(tenant_a: Tenant) -> None:
    """Policy: three roles; the Controller holds every control area."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    for path in CONTROL_AREAS:
        assert client.get(path).status_code == 200, path


# --- restrictable permissions ------------------------------------------------


def test_an_administrator_without_reports_is_refused_reports_and_activity(
    tenant_a: Tenant,
) -> None:
    """Policy: permissions are restrictable; "see reports" can be withheld."""
    _restrict(tenant_a.administrator, can_view_reports=False)
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    assert client.get("/messages/report/").status_code == 403
    assert client.get("/activity/").status_code == 403
    assert client.get("/users/").status_code == 200


def test_an_administrator_without_user_creation_is_refused_users(
    tenant_a: Tenant,
) -> None:
    """Policy: permissions are restrictable; "create users" can be withheld."""
    _restrict(tenant_a.administrator, can_create_users=False)
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    assert client.get("/users/").status_code == 403
    assert client.get("/users/new/").status_code == 403
    assert client.post("/users/new/", _form()).status_code == 403
    assert not User.objects.filter(username="acme-new").exists()
    assert client.get("/messages/report/").status_code == 200


def test_without_full_numbers_a_user_sees_only_masked_numbers(
    tenant_a: Tenant,
) -> None:
    """Policy: permissions are restrictable; full numbers need their permission."""
    assert not tenant_a.user.can_view_full_numbers
    message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    client = tenant_a.client_for(tenant_a.user)

    for path in ["/messages/", f"/messages/{message.pk}/"]:
        page = client.get(path).content.decode()
        assert MASKED_SHOWN in page, path
        assert FULL_E164 not in page, path
        assert FULL_SHOWN not in page, path


def test_an_administrator_without_full_numbers_sees_masked_numbers(
    tenant_a: Tenant,
) -> None:
    """Policy: permissions are restrictable, for Administrators too."""
    message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    _restrict(tenant_a.administrator, can_view_full_numbers=False)
    client = tenant_a.client_for(tenant_a.administrator)

    page = client.get(f"/messages/{message.pk}/").content.decode()

    assert MASKED_SHOWN in page
    assert FULL_E164 not in page
    assert FULL_SHOWN not in page


def test_with_full_numbers_a_user_sees_the_whole_number(tenant_a: Tenant) -> None:
    """Policy: permissions are restrictable; the permission shows full numbers."""
    _restrict(tenant_a.user, can_view_full_numbers=True)
    message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    client = tenant_a.client_for(tenant_a.user)

    for path in ["/messages/", f"/messages/{message.pk}/"]:
        page = client.get(path).content.decode()
        assert FULL_SHOWN in page, path
        assert MASKED_SHOWN not in page, path


def _mobile_input(page: str) -> str:
    found = re.search(r'<input[^>]*name="mobile"[^>]*>', page)
    assert found is not None, "the page has no mobile input"
    value = re.search(r'value="([^"]*)"', found.group(0))
    return value.group(1) if value else ""


def test_the_user_page_never_holds_the_full_mobile_for_a_manager_without_it(
    tenant_a: Tenant,
) -> None:
    """Policy: without "see full mobile numbers", the user page masks it too.

    The number is shown masked as text, the input stays empty, and saving
    the form with the input empty keeps the number.
    """
    _restrict(tenant_a.user, mobile=FULL_E164)
    _restrict(tenant_a.administrator, can_view_full_numbers=False)
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)
    path = f"/users/{tenant_a.user.pk}/"

    page = client.get(path).content.decode()

    assert FULL_E164 not in page
    assert FULL_SHOWN not in page
    assert MASKED_SHOWN in page
    assert _mobile_input(page) == ""

    saved = client.post(path, _form(full_name="Renamed", mobile=""))
    assert saved.status_code == 302
    after = _fresh(tenant_a.user)
    assert (after.full_name, after.mobile) == ("Renamed", FULL_E164)

    # A number typed in replaces it, as for anyone.
    client.post(path, _form(full_name="Renamed", mobile="07400 654321"))
    assert _fresh(tenant_a.user).mobile == "+447400654321"


def test_the_user_page_shows_the_full_mobile_to_a_manager_with_it(
    tenant_a: Tenant,
) -> None:
    """Policy: a manager allowed full numbers sees and edits the number."""
    _restrict(tenant_a.user, mobile=FULL_E164)
    assert tenant_a.administrator.can_view_full_numbers
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)
    path = f"/users/{tenant_a.user.pk}/"

    page = client.get(path).content.decode()

    assert _mobile_input(page) == FULL_SHOWN
    assert MASKED_SHOWN not in page

    # For them the input holds the number, so emptying it removes it.
    client.post(path, _form(mobile=""))
    assert _fresh(tenant_a.user).mobile == ""


# --- nobody grants what they do not hold -------------------------------------


def test_an_administrator_without_export_cannot_create_a_user_with_export(
    tenant_a: Tenant,
) -> None:
    """Policy: nobody can grant a permission they do not hold themselves."""
    _restrict(tenant_a.administrator, can_export=False)
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    response = client.post(
        "/users/new/",
        _form(permissions=[Permission.SEND_BULK.value, Permission.EXPORT.value]),
    )

    assert response.status_code == 200
    assert "You may not grant what you do not hold: Export data" in " ".join(
        _form_errors(response)["permissions"]
    )
    assert not User.objects.filter(username="acme-new").exists()


def test_an_administrator_without_export_cannot_give_export_to_a_user(
    tenant_a: Tenant,
) -> None:
    """Policy: nobody can grant a permission they do not hold themselves."""
    _restrict(tenant_a.administrator, can_export=False)
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)
    path = f"/users/{tenant_a.user.pk}/"

    refused = client.post(
        path, _form(permissions=[Permission.SEND_BULK.value, Permission.EXPORT.value])
    )
    assert refused.status_code == 200
    assert "permissions" in _form_errors(refused)
    assert not _fresh(tenant_a.user).can_export

    # The same edit without the permission the actor lacks goes through.
    allowed = client.post(path, _form(full_name="Renamed"))
    assert allowed.status_code == 302
    assert _fresh(tenant_a.user).full_name == "Renamed"


def test_an_administrator_holding_export_may_grant_it(tenant_a: Tenant) -> None:
    """Policy: a manager may grant what they hold (the rule's other side)."""
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    response = client.post(
        f"/users/{tenant_a.user.pk}/",
        _form(permissions=[Permission.SEND_BULK.value, Permission.EXPORT.value]),
    )

    assert response.status_code == 302
    assert _fresh(tenant_a.user).can_export


def test_an_administrator_cannot_create_a_controller(tenant_a: Tenant) -> None:
    """Policy: nobody can grant a role above their own."""
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    response = client.post(
        "/users/new/",
        _form(role=Role.CONTROLLER.value, permissions=list(Permission.values)),
    )

    assert response.status_code == 200
    assert "role" in _form_errors(response)
    assert not User.objects.filter(username="acme-new").exists()

    with pytest.raises(PermissionDenied):
        user_create(
            organisation=tenant_a.organisation,
            username="acme-new",
            email="new@acme.example",
            password=None,
            created_by=tenant_a.administrator,
            changes=UserChanges(
                role=Role.CONTROLLER,
                full_name="",
                email="new@acme.example",
                permissions=ROLE_DEFAULTS[Role.CONTROLLER],
                daily_message_limit=None,
                monthly_message_limit=None,
            ),
        )
    assert not User.objects.filter(username="acme-new").exists()


def test_an_administrator_cannot_promote_a_user_to_controller(
    tenant_a: Tenant,
) -> None:
    """Policy: nobody can grant a role above their own (editing)."""
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    response = client.post(
        f"/users/{tenant_a.user.pk}/",
        _form(role=Role.CONTROLLER.value, permissions=list(Permission.values)),
    )

    assert response.status_code == 200
    assert "role" in _form_errors(response)
    assert _fresh(tenant_a.user).role == Role.USER


def test_an_administrator_cannot_edit_a_controller(tenant_a: Tenant) -> None:
    """Policy: only a Controller may change a Controller."""
    controller = tenant_a.controller
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    response = client.post(
        f"/users/{controller.pk}/",
        _form(
            role=Role.ADMINISTRATOR.value,
            email=controller.email,
            full_name="Demoted",
            permissions=[],
            is_active="",
        ),
    )

    assert response.status_code == 403
    after = _fresh(controller)
    assert (after.role, after.is_active, after.full_name) == (
        Role.CONTROLLER,
        True,
        controller.full_name,
    )
    with pytest.raises(PermissionDenied):
        user_update(
            actor=tenant_a.administrator,
            target=controller,
            changes=_changes(controller, full_name="Renamed"),
        )
    assert _fresh(controller).full_name == controller.full_name


@pytest.mark.parametrize("field", ["daily_message_limit", "monthly_message_limit"])
def test_a_limited_manager_cannot_set_a_higher_limit_or_none(
    tenant_a: Tenant, field: str
) -> None:
    """Policy: nobody can grant more than they hold; limits included."""
    _restrict(tenant_a.administrator, **{field: 10})
    actor = _fresh(tenant_a.administrator)
    target = tenant_a.user

    for wanted in (11, None):
        with pytest.raises(ValidationError) as refused:
            user_update(
                actor=actor, target=target, changes=_changes(target, **{field: wanted})
            )
        assert field in refused.value.message_dict
        assert getattr(_fresh(target), field) is None

    user_update(actor=actor, target=target, changes=_changes(target, **{field: 10}))
    assert getattr(_fresh(target), field) == 10


def test_a_limited_manager_cannot_create_an_unlimited_user_through_the_form(
    tenant_a: Tenant,
) -> None:
    """Policy: nobody can grant more than they hold; the form refuses it too."""
    _restrict(tenant_a.administrator, daily_message_limit=10)
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    unlimited = client.post("/users/new/", _form(daily_message_limit=""))
    higher = client.post("/users/new/", _form(daily_message_limit="11"))

    for response in (unlimited, higher):
        assert response.status_code == 200
        assert "daily_message_limit" in _form_errors(response)
    assert not User.objects.filter(username="acme-new").exists()


def test_a_new_user_gets_no_password_and_is_emailed_a_link(
    tenant_a: Tenant, committed: CommitCapture, mailoutbox: list[mail.EmailMessage]
) -> None:
    """Policy: new users choose their own password, from an emailed link."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    with committed(execute=True):
        response = client.post("/users/new/", _form())

    assert response.status_code == 302
    created = User.objects.get(username="acme-new")
    assert created.organisation_id == tenant_a.organisation.pk
    assert created.role == Role.USER
    assert not created.has_usable_password()
    assert created.password_changed_at is None
    welcome = [m for m in mailoutbox if m.to == ["new@acme.example"]]
    assert len(welcome) == 1
    found = re.search(r"https?://\S+/password-reset/\S+/\S+/", str(welcome[0].body))
    assert found is not None
    assert PASSWORD not in str(welcome[0].body)

    # The link opens the form to choose a password.
    browser = Client()
    opened = browser.get(found.group(0), follow=True)
    assert opened.status_code == 200
    assert "new_password1" in opened.content.decode()


# --- at least one active Controller ------------------------------------------


def test_the_last_controller_cannot_be_demoted(tenant_a: Tenant) -> None:
    """Policy: every organisation keeps at least one active Controller."""
    controller = tenant_a.controller

    with pytest.raises(ValidationError) as refused:
        user_update(
            actor=controller,
            target=controller,
            changes=_changes(controller, role=Role.ADMINISTRATOR),
        )

    assert "at least one active Controller" in " ".join(
        refused.value.message_dict["role"]
    )
    assert _fresh(controller).role == Role.CONTROLLER


def test_the_last_controller_cannot_be_deactivated(tenant_a: Tenant) -> None:
    """Policy: every organisation keeps at least one active Controller."""
    controller = tenant_a.controller

    with pytest.raises(ValidationError):
        user_update(
            actor=controller,
            target=controller,
            changes=_changes(controller, is_active=False),
        )

    assert _fresh(controller).is_active


def test_the_last_controller_cannot_be_demoted_through_the_form(
    tenant_a: Tenant,
) -> None:
    """Policy: every organisation keeps at least one active Controller."""
    controller = tenant_a.controller
    client = tenant_a.client_for(controller, second_factor=True)

    response = client.post(
        f"/users/{controller.pk}/",
        _form(
            role=Role.ADMINISTRATOR.value,
            email=controller.email,
            permissions=list(Permission.values),
        ),
    )

    assert response.status_code == 200
    assert "at least one active Controller" in " ".join(_form_errors(response)["role"])
    assert _fresh(controller).role == Role.CONTROLLER


def test_with_two_controllers_one_may_be_demoted(tenant_a: Tenant) -> None:
    """Policy: every organisation keeps at least one active Controller."""
    first = tenant_a.controller
    second = user_create(
        organisation=tenant_a.organisation,
        username="acme-controller2",
        email="controller2@acme.example",
        password=PASSWORD,
        role=Role.CONTROLLER,
    )

    user_update(
        actor=second, target=first, changes=_changes(first, role=Role.ADMINISTRATOR)
    )
    assert _fresh(first).role == Role.ADMINISTRATOR

    # Now the second is the last one.
    with pytest.raises(ValidationError):
        user_update(
            actor=second,
            target=second,
            changes=_changes(second, role=Role.ADMINISTRATOR),
        )
    assert _fresh(second).role == Role.CONTROLLER


def test_a_locked_controller_does_not_count_as_the_active_one(
    tenant_a: Tenant,
) -> None:
    """Policy: every organisation keeps at least one active Controller."""
    first = tenant_a.controller
    second = user_create(
        organisation=tenant_a.organisation,
        username="acme-controller2",
        email="controller2@acme.example",
        password=PASSWORD,
        role=Role.CONTROLLER,
    )
    _restrict(second, locked_at=timezone.now())

    with pytest.raises(ValidationError):
        user_update(
            actor=first, target=first, changes=_changes(first, role=Role.ADMINISTRATOR)
        )
    assert _fresh(first).role == Role.CONTROLLER


# --- message limits ----------------------------------------------------------


def test_a_daily_limit_refuses_the_send_that_would_pass_it(tenant_a: Tenant) -> None:
    """Policy: a user's daily message limit is enforced."""
    _restrict(tenant_a.user, daily_message_limit=2)
    user = _fresh(tenant_a.user)

    message_send(user=user, recipient=NUMBER, body="Hi")
    message_send(user=user, recipient=NUMBER, body="Hi")
    with pytest.raises(ValidationError) as refused:
        message_send(user=user, recipient=NUMBER, body="Hi")

    assert "daily limit of 2" in " ".join(refused.value.messages)
    assert Message.objects.filter(created_by=user).count() == 2
    tenant_a.organisation.refresh_from_db()
    assert tenant_a.organisation.credit_balance == 98


def test_a_monthly_limit_refuses_the_send_that_would_pass_it(
    tenant_a: Tenant,
) -> None:
    """Policy: a user's monthly message limit is enforced."""
    _restrict(tenant_a.user, monthly_message_limit=2)
    user = _fresh(tenant_a.user)

    message_send(user=user, recipient=NUMBER, body="Hi")
    message_send(user=user, recipient=NUMBER, body="Hi")
    with pytest.raises(ValidationError) as refused:
        message_send(user=user, recipient=NUMBER, body="Hi")

    assert "monthly limit of 2" in " ".join(refused.value.messages)
    assert Message.objects.filter(created_by=user).count() == 2


def test_a_limit_counts_parts_not_messages(tenant_a: Tenant) -> None:
    """Policy: message limits are in credits, one per part."""
    _restrict(tenant_a.user, daily_message_limit=2)
    user = _fresh(tenant_a.user)
    message_send(user=user, recipient=NUMBER, body="Hi")

    with pytest.raises(ValidationError) as refused:
        message_send(user=user, recipient=NUMBER, body="a" * 200)  # two parts

    assert "daily limit" in " ".join(refused.value.messages)
    assert Message.objects.filter(created_by=user).count() == 1
