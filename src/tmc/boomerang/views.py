"""Questions: ask, follow the answers live, export them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tmc.accounts.scoping import get_for_user_or_404
from tmc.boomerang.answers import Kind as AnswerKind
from tmc.boomerang.forms import ConversationReplyForm, KeywordRuleForm, QuestionForm
from tmc.boomerang.models import KeywordRule, Question, Ticket
from tmc.boomerang.services import (
    RecipientRow,
    conversation_read,
    conversation_reply,
    conversations_for,
    keyword_rule_create,
    keyword_rule_delete,
    pool_is_full_for,
    question_results,
    question_results_export,
    questions_for,
    questions_send,
    recipients_parse,
)
from tmc.contacts.services import number_shown
from tmc.downloads import csv_download
from tmc.formerrors import form_errors_add
from tmc.identity.access import control_area, signed_in
from tmc.identity.models import Permission, User

LIST_SIZE = 50


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _question(user: User, question_id: int) -> Question:
    """One the user may follow; any other answers as one that does not exist."""
    question = questions_for(user).filter(pk=question_id).first()
    if question is None:
        raise Http404("No question matches the query.")
    return question


ATTENTION = "attention"
UNANSWERED = "unanswered"


def _row_matches(row: RecipientRow, shown: str) -> bool:
    """Whether a person's row passes the results page's answer filter."""
    if not shown:
        return True
    if shown == ATTENTION:
        return row.needs_attention
    if shown == UNANSWERED:
        return row.answered_at is None
    return row.value == shown and not row.needs_attention


@signed_in
@require_GET
def question_list(request: HttpRequest) -> HttpResponse:
    questions = questions_for(_user(request)).select_related("created_by")
    return render(
        request, "boomerang/question_list.html", {"questions": questions[:LIST_SIZE]}
    )


@signed_in
@require_http_methods(["GET", "POST"])
def question_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = QuestionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            recipients = recipients_parse(
                form.cleaned_data["recipients"], user.organisation
            )
            crowded = [r for r in recipients if pool_is_full_for(user.organisation, r)]
            if crowded and not form.cleaned_data["confirm_reuse"]:
                form.fields["confirm_reuse"].widget = forms.CheckboxInput()
                raise ValidationError(
                    {
                        "confirm_reuse": (
                            f"{len(crowded)} of these people already have a question "
                            "open on every reply number. Sending closes their "
                            "oldest open question: its answers will no longer "
                            "be collected."
                        )
                    }
                )
            question = questions_send(
                user=user,
                recipients=recipients,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
                kind=AnswerKind(form.cleaned_data["kind"]),
                options=form.option_list(),
                language=form.cleaned_data["language"],
                follow_ups=form.follow_ups(),
                ticket_kind=Ticket.Kind(form.cleaned_data["ticket_kind"]),
                closes_at=form.cleaned_data["closes_at"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(
                request, f"Sent to {len(recipients)} people. Answers appear below."
            )
            return redirect("boomerang:results", question_id=question.pk)
    return render(request, "boomerang/question_form.html", {"form": form})


@signed_in
@require_GET
def results(request: HttpRequest, question_id: int) -> HttpResponse:
    """The live results; the page's poll gets only the results panel."""
    user = _user(request)
    question = _question(user, question_id)
    results = question_results(question, viewer=user)
    shown = request.GET.get("answer", "")
    choices = [(count.value, count.label) for count in results.counts]
    choices += [(ATTENTION, "Needs a person to read"), (UNANSWERED, "Not answered")]
    if shown not in {value for value, _ in choices}:
        shown = ""
    context: dict[str, Any] = {
        "results": results,
        "rows": [row for row in results.rows if _row_matches(row, shown)],
        "answer_choices": choices,
        "shown": shown,
        "can_export": user.has_permission(Permission.EXPORT),
    }
    template = (
        "boomerang/results_panel.html"
        if request.htmx  # type: ignore[attr-defined]
        else "boomerang/results.html"
    )
    return render(request, template, context)


@signed_in
@require_GET
def results_export(request: HttpRequest, question_id: int) -> StreamingHttpResponse:
    """The answers as CSV; 403 without the export permission."""
    user = _user(request)
    question = _question(user, question_id)
    rows = question_results_export(question, viewer=user, request=request)
    return csv_download(rows, name=f"answers-{question.pk}")


@signed_in
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Conversations, newest first: the user's own, or all for managers."""
    user = _user(request)
    everyone = request.GET.get("all") == "1" and user.is_manager
    conversations = list(conversations_for(user, everyone=everyone)[:LIST_SIZE])
    rows = [
        (ticket, number_shown(ticket.message.recipient, user) if ticket.message else "")
        for ticket in conversations
    ]
    return render(request, "boomerang/inbox.html", {"rows": rows, "everyone": everyone})


def _conversation(user: User, ticket_id: int) -> Ticket:
    """A ticket the user may read: their own, or any for managers."""
    ticket = get_for_user_or_404(Ticket, user, pk=ticket_id, message__isnull=False)
    assert ticket.message is not None
    if ticket.message.created_by_id != user.pk and not user.is_manager:
        raise Http404("No conversation matches the query.")
    return ticket


@signed_in
@require_http_methods(["GET", "POST"])
def conversation(request: HttpRequest, ticket_id: int) -> HttpResponse:
    user = _user(request)
    ticket = _conversation(user, ticket_id)
    form = ConversationReplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            conversation_reply(
                user=user,
                ticket=ticket,
                body=form.cleaned_data["body"],
                request=request,
            )
        except ValidationError as exc:
            for problems in exc.message_dict.values():
                for problem in problems:
                    form.add_error("body", problem)
        else:
            messages.success(request, "Your reply is on its way.")
            return redirect("boomerang:conversation", ticket_id=ticket.pk)
    assert ticket.message is not None
    return render(
        request,
        "boomerang/conversation.html",
        {
            "ticket": ticket,
            "entries": conversation_read(ticket=ticket),
            "number": number_shown(ticket.message.recipient, user),
            "form": form,
        },
    )


@control_area()
@require_http_methods(["GET", "POST"])
def keyword_rules(request: HttpRequest) -> HttpResponse:
    """Keywords on the organisation's dedicated numbers, and a form for more."""
    user = _user(request)
    form = KeywordRuleForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            rule = keyword_rule_create(
                user=user,
                number=form.cleaned_data["virtual_number"],
                keyword=form.cleaned_data["keyword"],
                reply=form.cleaned_data["reply"],
                group=form.cleaned_data["group"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(
                request, f"Texts starting {rule.keyword} now get the rule."
            )
            return redirect("boomerang:keywords")
    rules = KeywordRule.objects.for_user(user).select_related("virtual_number", "group")
    return render(
        request,
        "boomerang/keyword_rules.html",
        {
            "form": form,
            "rules": rules,
            "has_numbers": form.has_numbers(),
        },
    )


@control_area()
@require_POST
def keyword_rule_remove(request: HttpRequest, rule_id: int) -> HttpResponse:
    user = _user(request)
    rule = get_for_user_or_404(KeywordRule, user, pk=rule_id)
    keyword_rule_delete(user=user, rule=rule, request=request)
    messages.success(request, f"The rule for {rule.keyword} is gone.")
    return redirect("boomerang:keywords")
