from django.urls import path

from tmc.accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("organisation/sending/", views.sending_settings, name="sending_settings"),
    path("account/verified-numbers/", views.verified_numbers, name="verified_numbers"),
    path(
        "account/verified-numbers/<int:number_id>/",
        views.verified_number,
        name="verified_number",
    ),
]
