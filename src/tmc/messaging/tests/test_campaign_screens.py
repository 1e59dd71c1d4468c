"""The "Send to many" page, its preview and the campaign pages, over HTTP."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tmc.contacts.models import Group
from tmc.contacts.services import ContactDetails, contact_create, opt_out_add_by_user
from tmc.identity.models import User
from tmc.messaging.campaigns import campaign_send
from tmc.messaging.models import Campaign, Message
from tmc.testing import SENDER, CommitCapture, Tenant

HTMX = {"HX-Request": "true"}
BACKGROUND = {"HX-Request": "true", "X-TMC-Background": "1"}
TYPED = "07400 000001\nnot-a-number\n07400 000001, 07400 000002\n07400 000003"


def _form(**changes: object) -> dict[str, object]:
    return {"numbers": TYPED, "sender": SENDER, "body": "Shift swap?", **changes}


def test_the_nav_links_to_the_page_only_for_users_allowed_to_send_to_many(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)
    link = f'href="{reverse("messaging:bulk")}"'

    assert link in client.get(reverse("accounts:dashboard")).content.decode()

    User.objects.filter(pk=tenant_a.user.pk).update(can_send_bulk=False)

    assert link not in client.get(reverse("accounts:dashboard")).content.decode()
    assert client.get(reverse("messaging:bulk")).status_code == 403
    assert client.post(reverse("messaging:bulk"), _form(send="1")).status_code == 403
    assert Campaign.objects.count() == 0


def test_preview_shows_counts_reasons_by_line_and_the_cost_in_place(
    tenant_a: Tenant,
) -> None:
    opt_out_add_by_user(user=tenant_a.user, number="07400 000003")
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(reverse("messaging:bulk"), _form(preview="1"), headers=HTMX)

    page = response.content.decode()
    assert response.status_code == 200
    assert page.startswith('<div id="bulk">')  # the partial, swapped in place
    assert 'data-testid="recipients">2<' in page
    assert 'data-testid="invalid">1<' in page
    assert 'data-testid="duplicates">1<' in page
    assert 'data-testid="opted-out">1<' in page
    assert 'data-testid="credits">2<' in page
    assert 'data-testid="balance-after">98<' in page
    assert '<td class="number">2</td><td>Not a phone number.</td>' in page
    assert "not-a-number" in page  # only in the textarea, kept as typed
    assert page.count("not-a-number") == 1
    # Without VIEW_FULL_NUMBERS the removed numbers are masked.
    assert "+44 7400 0•••01" in page
    assert "+44 7400 000001" not in page
    assert Campaign.objects.count() == 0


def test_managers_who_may_see_full_numbers_see_them_in_the_preview(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    page = client.post(reverse("messaging:bulk"), _form(preview="1")).content.decode()

    assert "+44 7400 000001" in page


def test_errors_show_beside_their_fields_and_keep_what_was_typed(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        reverse("messaging:bulk"), _form(numbers="nonsense", body="", send="1")
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_numbers_error"' in page
    assert "every number was removed" in page
    assert 'id="id_body_error"' in page
    assert ">\nnonsense</textarea>" in page
    assert Campaign.objects.count() == 0
    assert Message.objects.count() == 0


def test_sending_queues_the_campaign_and_opens_its_page(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    group = Group.objects.create(organisation=tenant_a.organisation, name="Staff")
    contact_create(
        user=tenant_a.user,
        number="07400 000009",
        details=ContactDetails(name="Pat"),
        group_ids=[group.pk],
    )
    client = tenant_a.client_for(tenant_a.user)

    with committed(execute=True):
        response = client.post(
            reverse("messaging:bulk"), _form(groups=[group.pk], send="1")
        )

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("messaging:campaign", args=[campaign.pk])
    assert campaign.recipient_count == 4
    assert campaign.status == Campaign.Status.DONE
    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="delivered">4<' in page
    assert "Shift swap?" in page
    assert f'hx-get="{response["Location"]}"' not in page  # done: no polling
    listing = client.get(reverse("messaging:campaigns")).content.decode()
    assert f'id="campaign-{campaign.pk}"' in listing


def test_the_campaign_page_polls_in_the_background_while_sending(
    tenant_a: Tenant,
) -> None:
    campaign = campaign_send(user=tenant_a.user, numbers_text=TYPED, body="Hi")
    client = tenant_a.client_for(tenant_a.user)

    page = client.get(reverse("messaging:campaign", args=[campaign.pk]))
    poll = client.get(
        reverse("messaging:campaign", args=[campaign.pk]), headers=BACKGROUND
    )

    assert 'hx-trigger="every 2s"' in page.content.decode()
    assert "X-TMC-Background" in page.content.decode()
    fragment = poll.content.decode()
    assert fragment.startswith('<section id="campaign-progress"')
    assert 'data-testid="queued">3<' in fragment


def test_the_campaign_list_runs_a_fixed_number_of_queries(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)
    campaign_send(user=tenant_a.user, numbers_text=TYPED, body="Hi")
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("messaging:campaigns"))
    for _ in range(3):
        campaign_send(user=tenant_a.user, numbers_text=TYPED, body="Hi")

    with CaptureQueriesContext(connection) as four:
        response = client.get(reverse("messaging:campaigns"))

    assert response.content.decode().count('id="campaign-') == 4
    assert len(four) == len(one)


def test_another_organisations_campaign_is_not_found(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    theirs = campaign_send(user=tenant_b.user, numbers_text=TYPED, body="Secret")
    client = tenant_a.client_for(tenant_a.user)

    response = client.get(reverse("messaging:campaign", args=[theirs.pk]))
    listing = client.get(reverse("messaging:campaigns"))

    assert response.status_code == 404
    assert b"Secret" not in response.content
    assert f'id="campaign-{theirs.pk}"' not in listing.content.decode()


def test_a_group_of_another_organisation_is_refused_beside_the_groups(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    Group.objects.create(organisation=tenant_a.organisation, name="Ours")
    theirs = Group.objects.create(organisation=tenant_b.organisation, name="Theirs")
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        reverse("messaging:bulk"), _form(groups=[theirs.pk], send="1")
    )

    page = response.content.decode()
    assert 'id="id_groups_error"' in page
    assert "Theirs" not in page
    assert Campaign.objects.count() == 0
