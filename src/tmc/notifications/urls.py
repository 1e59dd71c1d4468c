from django.urls import path

from tmc.notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("bell/", views.bell, name="bell"),
    path("read/", views.read_all, name="read_all"),
    path("<int:notification_id>/open/", views.open_notification, name="open"),
    path("preferences/", views.preferences, name="preferences"),
    path("low-credit/", views.low_credit, name="low_credit"),
]
