"""Instants shown on the organisation's clock, whatever the server's zone."""

from datetime import datetime
from typing import Any

from django import template

register = template.Library()


@register.filter
def org_time(value: datetime | None, user: Any) -> str:
    """E.g. "Tue 10 Jun 2025, 08:00", in the user's organisation's zone."""
    if value is None:
        return ""
    local = value.astimezone(user.organisation.zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


@register.filter
def org_clock(value: datetime | None, user: Any) -> str:
    """Just the local time of day, e.g. "08:00"."""
    if value is None:
        return ""
    return f"{value.astimezone(user.organisation.zone):%H:%M}"
