"""The control-area pages where Controllers and Administrators manage API keys
and webhooks."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from tmc.accounts.scoping import get_for_user_or_404
from tmc.api.forms import ApiKeyForm, WebhookForm
from tmc.api.models import ApiKey, WebhookDelivery, WebhookEndpoint
from tmc.api.services import api_key_create, api_key_revoke
from tmc.api.webhooks import (
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_secret_rotate,
)
from tmc.formerrors import form_errors_add
from tmc.identity.access import control_area
from tmc.identity.models import User


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@control_area()
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    actor = _user(request)
    form = ApiKeyForm(request.POST or None, actor=actor)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = api_key_create(
                actor=actor,
                user=form.cleaned_data["user"],
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.expires_at(),
                allowed_networks=form.networks(),
                request=request,
            )
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                target = {"expires_at": "expires_on"}.get(field, field)
                form.add_error(target if target in form.fields else None, problems)
        else:
            form = ApiKeyForm(actor=actor)
    keys = ApiKey.objects.for_user(actor).select_related("user", "created_by")
    # The new key is rendered in this one response and never again: it is
    # not put in the session or a redirect, and the page is not cached
    # (SessionSecurityMiddleware marks signed-in pages no-store).
    return render(
        request,
        "api/keys.html",
        {"form": form, "keys": keys, "created": created, "now": timezone.now()},
        status=201 if created else 200,
    )


@control_area()
@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    actor = _user(request)
    key = get_for_user_or_404(ApiKey, actor, pk=key_id)
    if api_key_revoke(actor=actor, key=key, request=request):
        messages.success(request, f"The key {key.prefix}… is revoked.")
    return redirect("api:keys")


@control_area()
@require_http_methods(["GET", "POST"])
def webhooks_page(request: HttpRequest) -> HttpResponse:
    actor = _user(request)
    form = WebhookForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = webhook_endpoint_create(
                actor=actor,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                full_numbers=form.cleaned_data["full_numbers"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            form = WebhookForm()
    return _webhooks_render(
        request, form=form, secret=created.secret if created else None,
        status=201 if created else 200,
    )  # fmt: skip


def _webhooks_render(
    request: HttpRequest,
    *,
    form: WebhookForm | None = None,
    secret: str | None = None,
    status: int = 200,
) -> HttpResponse:
    actor = _user(request)
    endpoints = WebhookEndpoint.objects.for_user(actor)
    dead = (
        WebhookDelivery.objects.for_user(actor)
        .filter(state=WebhookDelivery.State.DEAD)
        .select_related("endpoint")[:100]
    )
    # A secret is rendered in this one response only, like a new API key.
    return render(
        request,
        "api/webhooks.html",
        {
            "form": form or WebhookForm(),
            "endpoints": endpoints,
            "dead": dead,
            "secret": secret,
        },
        status=status,
    )


@control_area()
@require_POST
def webhook_rotate(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    actor = _user(request)
    endpoint = get_for_user_or_404(WebhookEndpoint, actor, pk=endpoint_id)
    secret = webhook_secret_rotate(actor=actor, endpoint=endpoint, request=request)
    return _webhooks_render(request, secret=secret)


@control_area()
@require_POST
def webhook_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    actor = _user(request)
    endpoint = get_for_user_or_404(WebhookEndpoint, actor, pk=endpoint_id)
    webhook_endpoint_delete(actor=actor, endpoint=endpoint, request=request)
    messages.success(request, f"The webhook to {endpoint.url} is deleted.")
    return redirect("api:webhooks")


@control_area()
@require_POST
def webhook_resend(request: HttpRequest, delivery_id: int) -> HttpResponse:
    actor = _user(request)
    delivery = get_for_user_or_404(WebhookDelivery, actor, pk=delivery_id)
    if webhook_delivery_resend(actor=actor, delivery=delivery, request=request):
        messages.success(request, "The delivery will be sent again.")
    return redirect("api:webhooks")
