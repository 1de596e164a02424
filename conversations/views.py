"""The browser chat: thin views over the conversation selectors and services.

Each view parses input, finds what the user may see through the selectors (another user's
conversation is a 404), makes at most one service call and renders. Views that htmx calls render
twice: a whole page for a normal request, the fragment htmx swaps for an htmx request
(django-htmx's ``request.htmx``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from agents import selectors as agent_selectors
from agents.models import Team
from config import inputs
from config.common.permissions import page_permission_required
from config.errors import ApplicationError
from conversations import rendering, selectors, services
from conversations.forms import ConversationForm, MessageForm
from conversations.models import Conversation, Run
from conversations.realtime import serialize_run


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _is_htmx_fragment_request(request: HtmxHttpRequest) -> bool:
    # A history restore wants the whole page, even though htmx sends it with HX-Request.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _int_param(request: HtmxHttpRequest, name: str, *, minimum: int) -> int | None:
    """One helper reads a bounded integer query parameter: from ``minimum`` to
    ``inputs.QUERY_INT_MAX`` (what the database can compare and slice with), or None."""
    return inputs.bounded_int(request.GET.get(name), minimum=minimum)


def _sidebar_page(request: HtmxHttpRequest, offset: int) -> dict[str, Any]:
    size = settings.LODESTONE_SIDEBAR_PAGE_SIZE
    rows = list(selectors.conversation_list(user=request.user)[offset : offset + size + 1])
    return {"conversations": rows[:size], "more_offset": offset + size if len(rows) > size else None}


def _sidebar_context(request: HtmxHttpRequest, active: Conversation | None = None) -> dict[str, Any]:
    """The most recent conversations (older ones load on demand) and the one being shown."""
    return {**_sidebar_page(request, 0), "active": active}


def _add_errors(form: MessageForm | ConversationForm, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: per field when it names the form's fields."""
    if hasattr(exc, "error_dict") and set(exc.error_dict) <= set(form.fields):
        form.add_error(None, exc)
    else:
        form.add_error(None, exc.messages)


def _history_context(conversation: Conversation, before: int | None) -> dict[str, Any]:
    """One page of the chat's history: its items and, when there are older ones, where they start."""
    messages, has_more = selectors.messages_page(
        conversation_id=conversation.pk, before=before, limit=settings.LODESTONE_CHAT_PAGE_SIZE
    )
    return {
        "conversation": conversation,
        "items": rendering.history_items(
            selectors.chat_items(messages), selectors.run_outcomes(conversation=conversation)
        ),
        "earlier_before": messages[0]["seq"] if has_more and messages else None,
    }


def _chat_context(request: HtmxHttpRequest, conversation: Conversation, form: MessageForm) -> dict[str, Any]:
    active_run = selectors.run_active(conversation=conversation)
    return {
        **_sidebar_context(request, conversation),
        **_history_context(conversation, before=None),
        "last_seq": conversation.last_seq,
        "run": serialize_run(active_run) if active_run else None,
        "form": form,
    }


@login_required
def conversation_list_view(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "conversations/list.html", _sidebar_context(request))


def _starter_context(form: ConversationForm) -> dict[str, Any]:
    """The chosen team or agent, its starter prompts, and why its tools are not used (if so)."""
    value, chosen = form.chosen()
    if chosen is None:
        return {"chosen_value": value, "chosen": None, "starter_prompts": [], "tool_notes": []}
    agents = agent_selectors.team_agents(chosen) if isinstance(chosen, Team) else [chosen]
    return {
        "chosen_value": value,
        "chosen": chosen,
        "starter_prompts": list(chosen.starter_prompts or []),
        "tool_notes": agent_selectors.tools_not_offered_notes(agents),
    }


@login_required
@require_http_methods(["GET", "POST"])
def conversation_new_view(request: HtmxHttpRequest) -> HttpResponse:
    """The new-conversation page. A GET with ``?counterpart=team:<id>`` (or ``agent:<id>``)
    preselects that choice; from htmx (the choice changed) it renders only the starter prompts.
    A POST starts the conversation, with its first message when a starter prompt was clicked."""
    if request.method == "POST":
        form = ConversationForm(request.POST)
    else:
        form = ConversationForm(initial={"counterpart": request.GET.get("counterpart", "")})
    if request.method == "POST" and form.is_valid():
        try:
            conversation = services.conversation_start(
                owner=request.user,  # type: ignore[arg-type]
                title=form.cleaned_data["title"],
                first_message=form.cleaned_data["first_message"],
                **form.counterpart_kwargs(),  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("conversations:detail", conversation_id=conversation.pk)
    context = {**_starter_context(form), "form": form}
    if request.method == "GET" and _is_htmx_fragment_request(request):
        return render(request, "conversations/partials/starter_prompts.html", context)
    status = 422 if form.is_bound else 200
    return render(request, "conversations/new.html", {**_sidebar_context(request), **context}, status=status)


@login_required
def conversation_detail_view(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    context = _chat_context(request, conversation, MessageForm())
    if _is_htmx_fragment_request(request):
        # Navigation from the sidebar: the chat panel, plus the sidebar out of band.
        return render(request, "conversations/partials/detail_fragment.html", context)
    return render(request, "conversations/detail.html", context)


@page_permission_required("conversations.view_monitoring")
@require_GET
def monitoring_view(request: HtmxHttpRequest) -> HttpResponse:
    """How runs, agents, memory and tools are doing, and what needs attention now. The
    board refreshes itself (an HTMX request renders just the board)."""
    from conversations import monitoring

    period = request.GET.get("period", monitoring.DEFAULT_PERIOD)
    if period not in monitoring.PERIODS:
        period = monitoring.DEFAULT_PERIOD
    context = {"data": monitoring.snapshot(period=period), "periods": list(monitoring.PERIODS)}
    if _is_htmx_fragment_request(request):
        return render(request, "conversations/partials/monitoring_board.html", context)
    return render(request, "conversations/monitoring.html", context)


@login_required
@require_GET
def sidebar_more_view(request: HtmxHttpRequest) -> HttpResponse:
    """The next page of the sidebar's conversation list, in place of its "Show more" button."""
    offset = _int_param(request, "offset", minimum=0)
    if offset is None:
        return HttpResponseBadRequest(
            f"Give offset=<n>, a number of conversations to skip (0 to {inputs.QUERY_INT_MAX})."
        )
    return render(request, "conversations/partials/sidebar_items.html", _sidebar_page(request, offset))


@login_required
@require_GET
def conversation_history_view(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    """Older messages, for "Show earlier messages": a page of items and the next such button."""
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    before = _int_param(request, "before", minimum=1)
    if before is None:
        return HttpResponseBadRequest(f"Give before=<seq>, a message number from 1 to {inputs.QUERY_INT_MAX}.")
    return render(request, "conversations/partials/history_page.html", _history_context(conversation, before))


@login_required
@require_POST
def message_post_view(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    form = MessageForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            services.message_post(conversation=conversation, user=request.user, text=form.cleaned_data["text"])  # type: ignore[arg-type]
        except ValidationError as exc:
            _add_errors(form, exc)
            status = 422
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            form = MessageForm()  # a fresh, empty composer
    else:
        status = 422

    if _is_htmx_fragment_request(request):
        # The new message and the reply arrive over the socket; htmx swaps in the composer.
        return render(
            request,
            "conversations/partials/message_form.html",
            {"conversation": conversation, "form": form},
            status=status,
        )
    if status == 200:
        return redirect("conversations:detail", conversation_id=conversation.pk)
    return render(request, "conversations/detail.html", _chat_context(request, conversation, form), status=status)


def _control_active_run(
    request: HtmxHttpRequest, conversation_id: int, act: Callable[[Run], object], *, when: str | None = None
) -> HttpResponse:
    """Stop, pause or resume the conversation's active run (if any, and in state ``when`` if
    given). The socket announces the run's new status to every open tab, this one included."""
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    run = selectors.run_active(conversation=conversation)
    if run is not None and (when is None or run.status == when):
        act(run)
    if _is_htmx_fragment_request(request):
        return HttpResponse(status=204)
    return redirect("conversations:detail", conversation_id=conversation.pk)


@login_required
@require_POST
def run_cancel_view(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    return _control_active_run(request, conversation_id, lambda run: services.run_cancel(run=run))


@login_required
@require_POST
def run_pause_view(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    return _control_active_run(request, conversation_id, lambda run: services.run_pause(run=run))


@login_required
@require_POST
def run_resume_view(request: HtmxHttpRequest, conversation_id: int) -> HttpResponse:
    return _control_active_run(
        request,
        conversation_id,
        lambda run: services.run_resume(run=run, user=request.user),  # type: ignore[arg-type]
        when=Run.Status.AWAITING_INPUT,
    )
