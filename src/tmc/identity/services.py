"""Business rules for client users."""

from __future__ import annotations

import logging
import re

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from tmc.accounts.models import Organisation
from tmc.identity.models import Role, User

logger = logging.getLogger(__name__)

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{2,149}$")


def user_create(
    *,
    organisation: Organisation,
    username: str,
    email: str,
    password: str,
    role: Role = Role.USER,
    full_name: str = "",
) -> User:
    """Create a user after checking the username, email and password rules.

    Raises ValidationError, keyed by field, and creates nothing on bad input.
    """
    username = username.strip()
    errors: dict[str, list[str]] = {}
    if not USERNAME_PATTERN.match(username):
        errors["username"] = [
            "Use 3 to 150 letters, digits and . _ @ + - (starting with a letter "
            "or digit)."
        ]
    elif User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["That username is taken."]
    try:
        validate_email(email)
    except ValidationError as exc:
        errors["email"] = list(exc.messages)

    candidate = User(
        username=username,
        email=email,
        full_name=full_name,
        organisation=organisation,
        role=role,
    )
    try:
        password_validation.validate_password(password, candidate)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)

    candidate.set_password(password)
    candidate.save()
    logger.info(
        "user created id=%s organisation_id=%s role=%s",
        candidate.pk,
        organisation.pk,
        role,
    )
    return candidate
