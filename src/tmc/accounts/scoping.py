"""Look up client data on behalf of a user, never across organisations.

Anything a client user names by id (in a URL, a form or an API call) is
fetched here, so that an id belonging to another organisation answers exactly
as an id that does not exist: 404, with no hint that it exists.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from django.http import Http404

from tmc.accounts.models import OrganisationOwned
from tmc.identity.models import User

Owned = TypeVar("Owned", bound=OrganisationOwned)


def get_for_user_or_404(model: type[Owned], user: User, **lookup: Any) -> Owned:
    try:
        return cast(Owned, model.objects.for_user(user).get(**lookup))
    except model.DoesNotExist as exc:
        raise Http404(f"No {model._meta.verbose_name} matches the query.") from exc
