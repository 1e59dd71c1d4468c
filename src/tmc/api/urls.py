from django.urls import path

from tmc.api import views

app_name = "api"

urlpatterns = [
    path("", views.api_keys, name="keys"),
    path("<int:key_id>/revoke/", views.api_key_revoke_view, name="key_revoke"),
]
