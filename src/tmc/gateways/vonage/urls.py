from django.urls import path

from tmc.gateways.vonage import views

app_name = "vonage_gateway"

urlpatterns = [
    path("<slug:provider>/reports/", views.reports, name="reports"),
    path("<slug:provider>/inbound/", views.inbound, name="inbound"),
]
