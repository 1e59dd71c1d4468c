from django.urls import path

from tmc.staff import package_views, views

app_name = "staff"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("second-password/", views.second_password, name="second_password"),
    path("password/", views.password, name="password"),
    path("levels/", views.levels, name="levels"),
    path("packages/", package_views.packages, name="packages"),
    path("packages/<int:package_id>/", package_views.package_edit, name="package_edit"),
    path(
        "packages/<int:package_id>/prices/delete/",
        package_views.package_price_delete,
        name="package_price_delete",
    ),
    path("keepalive/", views.keepalive, name="keepalive"),
    path(
        "organisations/<int:organisation_id>/", views.organisation, name="organisation"
    ),
    path("organisations/<int:organisation_id>/access/", views.access, name="access"),
    path("organisations/<int:organisation_id>/credits/", views.credits, name="credits"),
    path("organisations/<int:organisation_id>/package/", views.package, name="package"),
    path("organisations/<int:organisation_id>/suspend/", views.suspend, name="suspend"),
    path(
        "organisations/<int:organisation_id>/users/<int:user_id>/unlock/",
        views.user_unlock,
        name="user_unlock",
    ),
    path(
        "organisations/<int:organisation_id>/messages/<int:message_id>/number/",
        views.message_number,
        name="message_number",
    ),
    path("numbers/", views.numbers, name="numbers"),
    path(
        "numbers/<int:number_id>/retire/",
        views.number_retire_view,
        name="number_retire",
    ),
    path("unmatched/", views.unmatched, name="unmatched"),
    path("routes/", views.routes, name="routes"),
    path("routes/delete/", views.route_delete, name="route_delete"),
    path("routes/gateway-reset/", views.gateway_reset, name="gateway_reset"),
    path("gateways/", views.gateways, name="gateways"),
    path("gateways/new/<slug:kind>/", views.gateway_new, name="gateway_new"),
    path("gateways/<int:provider_id>/", views.gateway_edit, name="gateway_edit"),
    path("members/", views.members, name="members"),
    path("members/<int:member_id>/level/", views.member_level, name="member_level"),
    path("members/<int:member_id>/unlock/", views.member_unlock, name="member_unlock"),
]
