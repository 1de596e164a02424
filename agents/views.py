"""The team visualization page (HTMX partials over the selectors in ``agents.visual``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods
from django_htmx.middleware import HtmxDetails

from agents import components, selectors
from agents.models import Team
from agents.permissions import COMPONENT_IMPORT_PERMISSIONS
from agents.visual import run_timeline, team_graph
from conversations import selectors as conversation_selectors
from conversations.models import Conversation


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _conversation(request: HttpRequest, team: Team) -> Conversation | None:
    raw = request.GET.get("conversation", "")
    conversations = conversation_selectors.conversation_list(user=request.user).filter(team=team)
    if raw:
        if not raw.isdigit():
            raise Http404("No such conversation.")
        return get_object_or_404(conversations, pk=int(raw))
    return conversations.order_by("-updated_at", "-id").first()


@login_required
@require_http_methods(["GET", "POST"])
def team_list(request: HttpRequest) -> HttpResponse:
    """The teams, each with a link to its visualization and its JSON; a user with every permission
    an import needs may upload a file of AutoGen components (the same import as the command and the API)."""
    can_import = request.user.has_perms(COMPONENT_IMPORT_PERMISSIONS)
    context: dict[str, Any] = {"can_import": can_import}
    if request.method == "POST":
        if not can_import:
            raise PermissionDenied(f"Importing needs the permissions {', '.join(COMPONENT_IMPORT_PERMISSIONS)}.")
        upload = request.FILES.get("file")
        if upload is None:
            context["problems"] = ["Choose a JSON file to import."]
        elif upload.size is not None and upload.size > components.MAX_BYTES:
            context["problems"] = [f"The file is {upload.size} bytes; the limit is {components.MAX_BYTES}."]
        else:
            try:
                context["imported"] = components.import_file(upload.read(), by=request.user).summary()  # type: ignore[arg-type]
            except components.ImportRejected as exc:
                context["problems"] = exc.problems
    context["teams"] = selectors.team_list()
    return render(request, "agents/team_list.html", context, status=400 if context.get("problems") else 200)


@login_required
def team_visual(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)
    conversation = _conversation(request, team)
    context = {
        "team": team,
        "conversation": conversation,
        "graph": team_graph(team=team, conversation=conversation),
        "timeline": run_timeline(conversation=conversation) if conversation else [],
        "conversations": conversation_selectors.conversation_list(user=request.user).filter(team=team)[:50],
    }
    template = "agents/partials/live.html" if request.htmx else "agents/team_visual.html"
    return render(request, template, context)
