from django.urls import path

from tmc.messaging import campaign_views, views

app_name = "messaging"

urlpatterns = [
    path("compose/", views.compose, name="compose"),
    path("compose/segments/", views.segments, name="segments"),
    path("", views.history, name="history"),
    path("<int:message_id>/", views.detail, name="detail"),
    path("report/", views.report, name="report"),
    path("bulk/", campaign_views.bulk, name="bulk"),
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path(
        "campaigns/<int:campaign_id>/",
        campaign_views.campaign_detail,
        name="campaign",
    ),
]
