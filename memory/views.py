"""The Memory page: semantic search with scores, the list filtered by agent and kind, provenance
(consolidated sources; links to the messages a memory came from), a memory's history, and the
owner's corrections (edit, delete). One view renders the page or, for htmx, its fragment."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations import selectors as conversation_selectors
from conversations.views import HtmxHttpRequest, _is_htmx_fragment_request
from memory import selectors, services
from memory.forms import MemoryEditForm, MemoryFilterForm
from memory.models import Experience

SEARCH_K = 20
LIST_LIMIT = 200


def _results(request: HtmxHttpRequest, form: MemoryFilterForm) -> dict[str, Any]:
    if not form.is_valid():
        return {"error": " ".join(str(e) for errors in form.errors.values() for e in errors), "items": []}
    data = form.cleaned_data
    agent, kind, query = data["agent"], data["kind"], data["q"].strip()
    if query:
        filters: dict[str, Any] = {}
        if agent is not None:
            filters["agent"] = agent.pk
        if kind:
            filters["kind"] = kind
        try:
            found = services.experiences_retrieve_similar(context=query, user=request.user, k=SEARCH_K, filters=filters)
        except ValidationError as exc:
            return {"error": " ".join(exc.messages), "items": []}
        items = [{"experience": r.experience, "score": r.score, "similarity": r.similarity} for r in found]
        return {"query": query, "items": items}
    experiences = selectors.experience_list(user=request.user, agent_id=agent.pk if agent else None, kind=kind or None)
    return {"query": "", "items": [{"experience": e} for e in experiences.prefetch_related("sources")[:LIST_LIMIT]]}


@login_required
def memory_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = MemoryFilterForm(request.GET)
    context = {"form": form, **_results(request, form)}
    if _is_htmx_fragment_request(request):
        return render(request, "memory/partials/results.html", context)
    context["conversations"] = conversation_selectors.conversation_list(user=request.user)
    context["deleted"] = selectors.experience_revisions_deleted(user=request.user)
    return render(request, "memory/list.html", context)


def _editable_or_404(request: HtmxHttpRequest, experience_id: int) -> Experience:
    experience = selectors.experience_get_editable(user=request.user, pk=experience_id)
    if experience is None:
        raise Http404("No such memory among yours.")
    return experience


@login_required
@require_GET
def memory_item_view(request: HtmxHttpRequest, experience_id: int) -> HttpResponse:
    """One memory's card (what "Cancel" on the edit form swaps back)."""
    experience = selectors.experience_get(user=request.user, pk=experience_id)
    if experience is None:
        raise Http404("No such memory among yours.")
    return render(request, "memory/partials/item.html", {"experience": experience})


@login_required
@require_http_methods(["GET", "POST"])
def memory_edit_view(request: HtmxHttpRequest, experience_id: int) -> HttpResponse:
    """GET: the edit form in place of the memory's card; POST: the correction, then the card."""
    experience = _editable_or_404(request, experience_id)
    form = MemoryEditForm(request.POST or None, initial={"text": experience.text})
    if request.method == "POST" and form.is_valid():
        try:
            services.experience_update(
                experience=experience,
                text=form.cleaned_data["text"],
                revision=services.Revision.user(request.user),  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            form.add_error("text", " ".join(exc.messages))
        else:
            if _is_htmx_fragment_request(request):
                return render(request, "memory/partials/item.html", {"experience": experience})
            return redirect("memory:list")
    template = "memory/partials/edit.html" if _is_htmx_fragment_request(request) else "memory/edit.html"
    return render(request, template, {"experience": experience, "form": form})


@login_required
@require_GET
def memory_history_view(request: HtmxHttpRequest, experience_id: int) -> HttpResponse:
    """What a memory said before, and who or what changed it."""
    experience = selectors.experience_get(user=request.user, pk=experience_id)
    if experience is None:
        raise Http404("No such memory among yours.")
    context = {"experience": experience, "revisions": selectors.experience_history(experience=experience)}
    if _is_htmx_fragment_request(request):
        return render(request, "memory/partials/history.html", context)
    return render(request, "memory/history.html", context)


@login_required
@require_POST
def memory_delete_view(request: HtmxHttpRequest, experience_id: int) -> HttpResponse:
    experience = _editable_or_404(request, experience_id)
    services.experience_delete(experience=experience, revision=services.Revision.user(request.user))  # type: ignore[arg-type]
    if _is_htmx_fragment_request(request):
        return HttpResponse("")  # htmx swaps the item away
    return redirect("memory:list")
