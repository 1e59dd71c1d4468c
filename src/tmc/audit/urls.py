from django.urls import path

from tmc.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.activity, name="activity"),
]
