from django.urls import path

from tmc.messaging import views

app_name = "messaging"

urlpatterns = [
    path("compose/", views.compose, name="compose"),
    path("compose/segments/", views.segments, name="segments"),
    path("", views.history, name="history"),
    path("<int:message_id>/", views.detail, name="detail"),
    path("report/", views.report, name="report"),
]
