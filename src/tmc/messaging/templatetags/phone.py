from django import template

from tmc.lib.phone import mask_number

register = template.Library()


@register.filter
def masked(e164: str) -> str:
    """Show a mobile number with its middle digits hidden."""
    return mask_number(e164)
