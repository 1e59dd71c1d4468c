"""The account's credit balance."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from tmc.api.auth import api_key
from tmc.api.endpoints.messages import READ_ERRORS
from tmc.api.schemas import BalanceOut

router = Router(tags=["account"])


@router.get(
    "/account/balance",
    response={200: BalanceOut, **READ_ERRORS},
    summary="The credit balance",
    description="Any scope may read it: every key spends from it.",
)
def balance(request: HttpRequest) -> BalanceOut:
    user = api_key(request).user
    user.organisation.refresh_from_db(fields=["credit_balance"])
    return BalanceOut(credits=user.organisation.credit_balance)
