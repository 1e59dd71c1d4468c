"""Look-alike characters on the compose page: offered, previewed, and sent."""

from __future__ import annotations

import html
import re

from django.urls import reverse

from tmc.audit.models import Event
from tmc.messaging.models import Message
from tmc.testing import SENDER, Tenant

NUMBER = "07400 123456"
# Two look-alikes make this 85-character text UCS-2: two parts instead of one.
CURLY = (
    "It\u2019s your shift tomorrow \u2013 9am at the depot. Reply YES to "
    "confirm or NO if you can't."
)
PLAIN = (
    "It's your shift tomorrow - 9am at the depot. Reply YES to confirm or NO "
    "if you can't."
)


def _text(content: bytes) -> str:
    """The page's words as a person reads them: tags gone, spaces collapsed."""
    words = re.sub(r"<[^>]+>", " ", content.decode())
    return " ".join(html.unescape(words).split())


def _counter(tenant: Tenant, body: str, *, ticked: bool) -> bytes:
    client = tenant.client_for(tenant.user)
    data = {"body": body, **({"replace_lookalikes": "on"} if ticked else {})}
    response = client.post(reverse("messaging:segments"), data)
    assert response.status_code == 200
    return response.content


def test_the_counter_offers_gsm7_when_only_lookalikes_force_ucs2(
    tenant_a: Tenant,
) -> None:
    content = _counter(tenant_a, CURLY, ticked=False)

    assert b'data-encoding="UCS-2" data-parts="2" data-lookalikes="2"' in content
    assert (
        "Replacing 2 look-alike characters (\u2019 → ', \u2013 → -) would send "
        "this as GSM-7 in 1 part instead of 2."
    ) in _text(content)
    assert b'data-testid="preview"' not in content


def test_ticking_the_box_counts_and_previews_the_replaced_text(
    tenant_a: Tenant,
) -> None:
    content = _counter(tenant_a, CURLY, ticked=True)

    assert b'data-encoding="GSM-7" data-parts="1"' in content
    assert "sends this as GSM-7 in 1 part instead of 2." in _text(content)
    preview = re.search(rb'data-testid="preview"[^>]*>(.*?)</blockquote>', content)
    assert preview is not None
    assert html.unescape(preview.group(1).decode()) == PLAIN


def test_the_offer_says_so_when_the_parts_stay_the_same(tenant_a: Tenant) -> None:
    content = _counter(tenant_a, "Shift \u201cA\u201d", ticked=False)

    assert "would send this as GSM-7 (1 part either way" in _text(content)


def test_no_offer_when_the_text_is_gsm7_or_needs_ucs2_anyway(
    tenant_a: Tenant,
) -> None:
    plain = _counter(tenant_a, PLAIN, ticked=True)
    emoji = _counter(tenant_a, CURLY + " 😀", ticked=True)

    for content in (plain, emoji):
        assert b"data-lookalikes" not in content
        assert b"look-alike" not in content
    assert b'data-encoding="UCS-2"' in emoji


def test_the_compose_page_has_the_box_and_keeps_it_ticked_after_an_error(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    empty = client.get(reverse("messaging:compose"))
    refused = client.post(
        reverse("messaging:compose"),
        {
            "recipient": "12",
            "sender": SENDER,
            "body": CURLY,
            "replace_lookalikes": "on",
        },
    )

    assert "Replace look-alike characters" in empty.content.decode()
    assert b'name="replace_lookalikes"' in empty.content
    assert re.search(rb'name="replace_lookalikes"[^>]*checked', refused.content)
    # The counter under the refused form shows the text as it would go.
    assert b'data-encoding="GSM-7" data-parts="1"' in refused.content
    assert not Message.objects.exists()


def _send(tenant: Tenant, body: str, *, ticked: bool) -> Message:
    client = tenant.client_for(tenant.user)
    data = {"recipient": NUMBER, "sender": SENDER, "body": body}
    if ticked:
        data["replace_lookalikes"] = "on"
    response = client.post(reverse("messaging:compose"), data)
    assert response.status_code == 302, response.content
    return Message.objects.get()


def test_a_send_with_the_box_ticked_stores_the_replaced_text(
    tenant_a: Tenant,
) -> None:
    message = _send(tenant_a, CURLY, ticked=True)

    assert message.body == PLAIN
    assert (message.encoding, message.parts, message.credits) == ("GSM-7", 1, 1)
    event = Event.objects.get(action="message.sent")
    assert event.details["lookalikes_replaced"] == 2


def test_a_send_with_the_box_unticked_keeps_the_text_as_written(
    tenant_a: Tenant,
) -> None:
    message = _send(tenant_a, CURLY, ticked=False)

    assert message.body == CURLY
    assert (message.encoding, message.parts, message.credits) == ("UCS-2", 2, 2)
    event = Event.objects.get(action="message.sent")
    assert "lookalikes_replaced" not in event.details


def test_the_box_changes_nothing_when_the_text_needs_ucs2_anyway(
    tenant_a: Tenant,
) -> None:
    body = CURLY + " 😀"

    message = _send(tenant_a, body, ticked=True)

    assert message.body == body
    assert message.encoding == "UCS-2"


def test_replacing_can_bring_a_long_text_within_the_part_limit(
    tenant_a: Tenant,
) -> None:
    # 424 characters: 7 parts as UCS-2, over the limit of 6; 3 as GSM-7.
    body = ("Shift\u2019s on. " * 35).strip() + " " * 5
    client = tenant_a.client_for(tenant_a.user)
    data = {"recipient": NUMBER, "sender": SENDER, "body": body}

    refused = client.post(reverse("messaging:compose"), data)
    sent = client.post(
        reverse("messaging:compose"), {**data, "replace_lookalikes": "on"}
    )

    assert "needs 7 parts" in refused.content.decode()
    assert sent.status_code == 302
    assert Message.objects.get().parts == 3
