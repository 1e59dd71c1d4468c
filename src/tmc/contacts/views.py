"""The address book's pages: contacts, groups, import, export, opt-outs.

A contact's number reaches a page only through ``number_shown``, so a user
without the full-numbers permission sees it masked everywhere, including in
the edit form, which never carries the number as a value.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from tmc.accounts.scoping import get_for_user_or_404
from tmc.contacts.forms import (
    ContactFilterForm,
    ContactForm,
    GroupForm,
    ImportMappingForm,
    ImportUploadForm,
    OptOutForm,
)
from tmc.contacts.importing import ImportFileError, import_map, import_prepare
from tmc.contacts.models import Contact, Group, ImportJob, OptOut
from tmc.contacts.services import (
    ContactDetails,
    contact_create,
    contact_delete,
    contact_find,
    contact_update,
    contacts_export,
    contacts_for,
    group_create,
    group_delete,
    group_update,
    number_shown,
    opt_out_add_by_user,
)
from tmc.downloads import csv_download
from tmc.formerrors import form_errors_add
from tmc.identity.access import signed_in
from tmc.identity.models import Permission, User
from tmc.lib.phone import InvalidNumber

PAGE_SIZE = 50
RECENT_IMPORTS = 10
# Service field names that a form shows under another name.
FORM_FIELD_FOR = {"fields": "custom_fields"}


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


# --- contacts ------------------------------------------------------------------


@signed_in
@require_GET
def contact_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = ContactFilterForm(request.GET or None, user=user)
    contacts = contacts_for(user)
    group = None
    if form.is_valid():
        group = form.cleaned_data["group"]
        if group is not None:
            contacts = contacts.filter(groups=group)
        if form.cleaned_data["number"]:
            try:
                found = contact_find(user, form.cleaned_data["number"])
            except InvalidNumber as exc:
                form.add_error("number", str(exc))
                found = None
            contacts = contacts.filter(pk=found.pk) if found else contacts.none()
    elif form.is_bound:
        contacts = contacts.none()

    # Only the page shown is decrypted: the paginator slices the query.
    page = Paginator(contacts.prefetch_related("groups"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [(contact, number_shown(contact.number, user)) for contact in page]
    return render(
        request,
        "contacts/contact_list.html",
        {
            "form": form,
            "group": group,
            "page": page,
            "rows": rows,
            "can_export": user.has_permission(Permission.EXPORT),
        },
    )


def _details(form: ContactForm) -> ContactDetails:
    return ContactDetails(
        name=form.cleaned_data["name"].strip(),
        email=form.cleaned_data["email"].strip(),
        fields=form.cleaned_data["custom_fields"],
    )


@signed_in
@require_http_methods(["GET", "POST"])
def contact_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = ContactForm(request.POST or None, user=user, editing=None)
    if request.method == "POST" and form.is_valid():
        try:
            contact_create(
                user=user,
                number=form.cleaned_data["number"],
                details=_details(form),
                group_ids=[g.pk for g in form.cleaned_data["groups"]],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc, renamed=FORM_FIELD_FOR)
        else:
            messages.success(request, "The contact has been added.")
            return redirect("contacts:list")
    return render(request, "contacts/contact_form.html", {"form": form})


@signed_in
@require_http_methods(["GET", "POST"])
def contact_edit(request: HttpRequest, contact_id: int) -> HttpResponse:
    user = _user(request)
    contact = get_for_user_or_404(Contact, user, pk=contact_id)
    form = ContactForm(request.POST or None, user=user, editing=contact)
    if request.method == "POST" and form.is_valid():
        try:
            contact_update(
                user=user,
                contact=contact,
                number=form.cleaned_data["number"],
                details=_details(form),
                group_ids=[g.pk for g in form.cleaned_data["groups"]],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc, renamed=FORM_FIELD_FOR)
        else:
            messages.success(request, "The contact has been saved.")
            return redirect("contacts:list")
    return render(
        request,
        "contacts/contact_form.html",
        {
            "form": form,
            "contact": contact,
            "number_shown": number_shown(contact.number, user),
        },
    )


@signed_in
@require_http_methods(["GET", "POST"])
def contact_delete_view(request: HttpRequest, contact_id: int) -> HttpResponse:
    user = _user(request)
    contact = get_for_user_or_404(Contact, user, pk=contact_id)
    if request.method == "POST":
        contact_delete(user=user, contact=contact, request=request)
        messages.success(request, "The contact has been deleted.")
        return redirect("contacts:list")
    return render(
        request,
        "contacts/contact_delete.html",
        {"contact": contact, "number_shown": number_shown(contact.number, user)},
    )


# --- groups --------------------------------------------------------------------


@signed_in
@require_GET
def group_list(request: HttpRequest) -> HttpResponse:
    groups = Group.objects.for_user(_user(request)).annotate(members=Count("contacts"))
    return render(request, "contacts/group_list.html", {"groups": groups})


@signed_in
@require_http_methods(["GET", "POST"])
def group_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = group_create(
                user=user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc, renamed=FORM_FIELD_FOR)
        else:
            messages.success(request, f"The group {group.name} has been added.")
            return redirect("contacts:groups")
    return render(request, "contacts/group_form.html", {"form": form})


@signed_in
@require_http_methods(["GET", "POST"])
def group_edit(request: HttpRequest, group_id: int) -> HttpResponse:
    user = _user(request)
    group = get_for_user_or_404(Group, user, pk=group_id)
    form = GroupForm(
        request.POST or None,
        initial={"name": group.name, "description": group.description},
    )
    if request.method == "POST" and form.is_valid():
        try:
            group_update(
                user=user,
                group=group,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc, renamed=FORM_FIELD_FOR)
        else:
            messages.success(request, f"The group {group.name} has been saved.")
            return redirect("contacts:groups")
    return render(request, "contacts/group_form.html", {"form": form, "group": group})


@signed_in
@require_http_methods(["GET", "POST"])
def group_delete_view(request: HttpRequest, group_id: int) -> HttpResponse:
    user = _user(request)
    group = get_for_user_or_404(Group, user, pk=group_id)
    if request.method == "POST":
        name = group.name
        group_delete(user=user, group=group, request=request)
        messages.success(request, f"The group {name} has been deleted.")
        return redirect("contacts:groups")
    return render(
        request,
        "contacts/group_delete.html",
        {"group": group, "members": group.contacts.count()},
    )


# --- import --------------------------------------------------------------------


def _job_for(user: User, job_id: int) -> ImportJob:
    """An import of the user's own, or of anyone in the organisation for managers.

    An import names its file and, once done, its problems by line: a User
    sees only their own, and another's answers as one that does not exist.
    """
    job = get_for_user_or_404(ImportJob, user, pk=job_id)
    if job.created_by_id != user.pk and not user.is_manager:
        raise Http404("No import matches the query.")
    return job


@signed_in
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = import_prepare(
                user=user,
                file_name=upload.name or "contacts.csv",
                data=upload.read(),
                encoding=form.cleaned_data["encoding"],
            )
        except ImportFileError as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("contacts:import_mapping", job_id=job.pk)

    recent = ImportJob.objects.for_user(user).select_related("created_by")
    if not user.is_manager:
        recent = recent.filter(created_by=user)
    return render(
        request,
        "contacts/import_upload.html",
        {"form": form, "recent": recent[:RECENT_IMPORTS]},
    )


@signed_in
@require_http_methods(["GET", "POST"])
def import_mapping(request: HttpRequest, job_id: int) -> HttpResponse:
    user = _user(request)
    job = _job_for(user, job_id)
    if job.status != ImportJob.Status.MAPPING:
        return redirect("contacts:import_progress", job_id=job.pk)

    form = ImportMappingForm(request.POST or None, user=user, job=job)
    if request.method == "POST" and form.is_valid():
        try:
            import_map(
                user=user,
                job=job,
                mapping=form.mapping(),
                group=form.cleaned_data["group"],
            )
        except ValidationError as exc:
            form_errors_add(form, exc, renamed=FORM_FIELD_FOR)
        else:
            return redirect("contacts:import_progress", job_id=job.pk)
    return render(request, "contacts/import_mapping.html", {"form": form, "job": job})


@signed_in
@require_GET
def import_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The import's progress; its htmx poll gets only the progress part."""
    job = _job_for(_user(request), job_id)
    template = (
        "contacts/import_progress.html"
        if request.htmx  # type: ignore[attr-defined]
        else "contacts/import_job.html"
    )
    return render(request, template, {"job": job})


# --- export --------------------------------------------------------------------


@signed_in
@require_GET
def export(request: HttpRequest) -> StreamingHttpResponse:
    """The address book as CSV; 403 without the export permission."""
    user = _user(request)
    group = None
    group_id = request.GET.get("group", "")
    if group_id:
        if not group_id.isdigit():
            raise Http404("No group matches the query.")
        group = get_for_user_or_404(Group, user, pk=int(group_id))
    # Raises PermissionDenied (403) for users without the export permission.
    rows = contacts_export(user=user, group=group, request=request)

    return csv_download(rows, name="contacts")


# --- opt-outs ------------------------------------------------------------------


@signed_in
@require_http_methods(["GET", "POST"])
def opt_outs(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = OptOutForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            opt_out_add_by_user(
                user=user, number=form.cleaned_data["number"], request=request
            )
        except ValidationError as exc:
            form_errors_add(form, exc, renamed=FORM_FIELD_FOR)
        else:
            messages.success(request, "The number is on the opt-out list.")
            return redirect("contacts:opt_outs")

    listed = OptOut.objects.for_user(user).select_related("created_by")
    page = Paginator(listed, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(opt_out, number_shown(opt_out.number, user)) for opt_out in page]
    return render(
        request,
        "contacts/opt_outs.html",
        {"form": form, "page": page, "rows": rows},
    )
