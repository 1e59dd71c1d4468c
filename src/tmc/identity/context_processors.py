from __future__ import annotations

from django.http import HttpRequest

from tmc.identity.models import User
from tmc.identity.policy import policy_for


def session_policy(request: HttpRequest) -> dict[str, int]:
    """How long the page may stay idle, for its one-minute warning."""
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return {}
    return {"idle_seconds": policy_for(user.organisation).idle_minutes * 60}
