"""Password rules of the security policy that Django does not ship."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError


class LettersAndDigitsValidator:
    """Require both letters and digits, as the policy recommends (``P4s5W0rD``)."""

    def validate(self, password: str, user: Any = None) -> None:
        if not any(c.isalpha() for c in password) or not any(
            c.isdigit() for c in password
        ):
            raise ValidationError(
                "The password must mix letters and numbers.",
                code="password_letters_and_digits",
            )

    def get_help_text(self) -> str:
        return "Your password must mix letters and numbers."
