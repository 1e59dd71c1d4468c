from django.urls import path

from tmc.messaging import campaign_views, schedule_views, views

app_name = "messaging"

urlpatterns = [
    path("compose/", views.compose, name="compose"),
    path("compose/segments/", views.segments, name="segments"),
    path("compose/template/", views.template_use, name="template_use"),
    path("", views.history, name="history"),
    path("<int:message_id>/", views.detail, name="detail"),
    path("report/", views.report, name="report"),
    path("templates/", views.template_list, name="templates"),
    path("templates/new/", views.template_new, name="template_new"),
    path("templates/<int:template_id>/", views.template_edit, name="template_edit"),
    path(
        "templates/<int:template_id>/delete/",
        views.template_delete,
        name="template_delete",
    ),
    path("bulk/", campaign_views.bulk, name="bulk"),
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path(
        "campaigns/<int:campaign_id>/",
        campaign_views.campaign_detail,
        name="campaign",
    ),
    path(
        "campaigns/<int:campaign_id>/cancel/",
        campaign_views.campaign_cancel_view,
        name="campaign_cancel",
    ),
    path("scheduled/", schedule_views.scheduled_list, name="scheduled"),
    path(
        "scheduled/<int:schedule_id>/",
        schedule_views.schedule_detail,
        name="schedule",
    ),
    path(
        "scheduled/<int:schedule_id>/edit/",
        schedule_views.schedule_edit,
        name="schedule_edit",
    ),
    path(
        "scheduled/<int:schedule_id>/cancel/",
        schedule_views.schedule_cancel_view,
        name="schedule_cancel",
    ),
]
