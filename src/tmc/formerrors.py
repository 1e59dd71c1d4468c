"""Put a service's ValidationError onto the form the person filled in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError


def form_errors_add(
    form: Any, error: ValidationError, *, renamed: Mapping[str, str] | None = None
) -> None:
    """Show each error beside its field, and the rest above the form.

    ``renamed`` maps a service's field names to the form's where they differ.
    """
    if not hasattr(error, "error_dict"):
        for problem in error.messages:
            form.add_error(None, problem)
        return
    for field, problems in error.message_dict.items():
        name = (renamed or {}).get(field, field)
        for problem in problems:
            form.add_error(name if name in form.fields else None, problem)
