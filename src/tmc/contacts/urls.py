from django.urls import path

from tmc.contacts import views

app_name = "contacts"

urlpatterns = [
    path("", views.contact_list, name="list"),
    path("new/", views.contact_new, name="new"),
    path("<int:contact_id>/", views.contact_edit, name="edit"),
    path("<int:contact_id>/delete/", views.contact_delete_view, name="delete"),
    path("groups/", views.group_list, name="groups"),
    path("groups/new/", views.group_new, name="group_new"),
    path("groups/<int:group_id>/", views.group_edit, name="group_edit"),
    path("groups/<int:group_id>/delete/", views.group_delete_view, name="group_delete"),
    path("import/", views.import_upload, name="import"),
    path("import/<int:job_id>/", views.import_mapping, name="import_mapping"),
    path(
        "import/<int:job_id>/progress/",
        views.import_progress,
        name="import_progress",
    ),
    path("export/", views.export, name="export"),
    path("opt-outs/", views.opt_outs, name="opt_outs"),
]
