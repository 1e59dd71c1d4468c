from django.urls import path

from tmc.boomerang import views

app_name = "boomerang"

urlpatterns = [
    path("", views.question_list, name="questions"),
    path("new/", views.question_new, name="new"),
    path("<int:question_id>/", views.results, name="results"),
    path("<int:question_id>/export/", views.results_export, name="export"),
    path("inbox/", views.inbox, name="inbox"),
    path("keywords/", views.keyword_rules, name="keywords"),
    path(
        "keywords/<int:rule_id>/delete/",
        views.keyword_rule_remove,
        name="keyword_delete",
    ),
    path("conversations/<int:ticket_id>/", views.conversation, name="conversation"),
]
