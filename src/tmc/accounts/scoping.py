"""Look up client data on behalf of a user, never across organisations.

Anything a client user names by id (in a URL, a form or an API call) is
fetched here, so that an id belonging to another organisation answers exactly
as an id that does not exist: 404, with no hint that it exists.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.http import Http404

from tmc.identity.models import User

Owned = TypeVar("Owned", bound=models.Model)


def get_for_user_or_404(model: type[Owned], user: User, **lookup: Any) -> Owned:
    """Fetch one object of ``model`` that belongs to ``user``'s organisation.

    ``model`` has an ``organisation`` foreign key (client data and the
    organisation's own users alike).
    """
    scoped = model._default_manager.filter(organisation_id=user.organisation_id)
    try:
        return scoped.get(**lookup)
    except ObjectDoesNotExist as exc:
        raise Http404(f"No {model._meta.verbose_name} matches the query.") from exc
