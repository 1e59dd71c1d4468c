from django.urls import path

from tmc.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.activity, name="activity"),
    path("export.csv", views.activity_csv, name="activity_csv"),
    path("mine/", views.my_logins, name="my_logins"),
]
