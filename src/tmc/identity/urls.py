from django.contrib.auth import views as auth_views
from django.urls import path

from tmc.identity import views
from tmc.identity.access import public

app_name = "identity"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("session/keepalive/", views.keepalive, name="keepalive"),
    path("second-password/", views.second_factor, name="second_factor"),
    path("account/", views.account, name="account"),
    path("account/password/", views.password_change_view, name="password_change"),
    path(
        "account/second-password/",
        views.second_password_change,
        name="second_password_change",
    ),
    path(
        "account/sessions/<int:session_id>/end/",
        views.session_end_view,
        name="session_end",
    ),
    path(
        "account/devices/<int:device_id>/revoke/",
        views.device_revoke_view,
        name="device_revoke",
    ),
    path("users/", views.users, name="users"),
    path("users/new/", views.user_new, name="user_new"),
    path("users/<int:user_id>/", views.user_edit, name="user_edit"),
    path("users/<int:user_id>/unlock/", views.user_unlock_view, name="user_unlock"),
    path(
        "users/<int:user_id>/devices/<int:device_id>/revoke/",
        views.user_device_revoke,
        name="user_device_revoke",
    ),
    path(
        "organisation/security/",
        views.organisation_security,
        name="organisation_security",
    ),
    path(
        "password-reset/",
        public(views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        public(
            auth_views.PasswordResetDoneView.as_view(
                template_name="identity/password_reset_done.html"
            )
        ),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        public(views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/complete/",
        public(
            auth_views.PasswordResetCompleteView.as_view(
                template_name="identity/password_reset_complete.html"
            )
        ),
        name="password_reset_complete",
    ),
]
