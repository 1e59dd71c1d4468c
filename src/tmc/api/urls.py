from django.urls import path

from tmc.api import views

app_name = "api"

urlpatterns = [
    path("", views.api_keys, name="keys"),
    path("<int:key_id>/revoke/", views.api_key_revoke_view, name="key_revoke"),
    path("webhooks/", views.webhooks_page, name="webhooks"),
    path(
        "webhooks/<int:endpoint_id>/rotate/",
        views.webhook_rotate,
        name="webhook_rotate",
    ),
    path(
        "webhooks/<int:endpoint_id>/delete/",
        views.webhook_delete,
        name="webhook_delete",
    ),
    path(
        "webhooks/deliveries/<int:delivery_id>/resend/",
        views.webhook_resend,
        name="webhook_resend",
    ),
]
