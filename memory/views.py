"""The Memory page: semantic search with scores, the list filtered by agent and kind, provenance of
consolidated memories, delete. One view renders the page or, for htmx, the results fragment."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from conversations import selectors as conversation_selectors
from conversations.views import HtmxHttpRequest, _is_htmx_fragment_request
from memory import selectors, services
from memory.forms import MemoryFilterForm

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
    return render(request, "memory/list.html", context)


@login_required
@require_POST
def memory_delete_view(request: HtmxHttpRequest, experience_id: int) -> HttpResponse:
    experience = selectors.experience_get_editable(user=request.user, pk=experience_id)
    if experience is None:
        raise Http404("No such memory among yours.")
    services.experience_delete(experience=experience)
    if _is_htmx_fragment_request(request):
        return HttpResponse("")  # htmx swaps the item away
    return redirect("memory:list")
