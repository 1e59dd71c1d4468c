from django.urls import path

from tmc.gateways.http import views

app_name = "http_gateway"

urlpatterns = [
    path("<slug:provider>/reports/", views.reports, name="reports"),
    path("<slug:provider>/inbound/", views.inbound, name="inbound"),
]
