from typing import Any

from django import template

from tmc.lib.phone import format_international, mask_number

register = template.Library()


@register.filter
def masked(e164: str) -> str:
    """Show a mobile number with its middle digits hidden."""
    return mask_number(e164)


@register.filter
def number_for(e164: str, user: Any) -> str:
    """The full number for users allowed to see it, masked for the rest."""
    if getattr(user, "can_view_full_numbers", False):
        return format_international(e164)
    return mask_number(e164)
