from django.urls import path

from tmc.gateways.simulator import views

app_name = "simulator"

urlpatterns = [
    path("", views.handsets, name="handsets"),
    path("<int:message_id>/reply/", views.reply, name="reply"),
]
