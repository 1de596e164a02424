"""The API keys page: create a named key (shown once), list and revoke your own keys. One view
renders the page or, for htmx, the panel it swaps."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from config.accounts import selectors, services
from config.accounts.forms import ApiKeyCreateForm

# The sidebar lists the user's conversations: read through their selector, as every page does.
from conversations import selectors as conversation_selectors


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _is_fragment(request: HtmxHttpRequest) -> bool:
    # A history restore wants the whole page, even though htmx sends it with HX-Request.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render(request: HtmxHttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    api_keys = selectors.api_key_list(user=request.user)  # type: ignore[arg-type]  # login_required
    context = {"form": ApiKeyCreateForm(), "api_keys": api_keys, **context}
    if _is_fragment(request):
        return render(request, "accounts/partials/api_keys_panel.html", context, status=status)
    context["conversations"] = conversation_selectors.conversation_list(user=request.user)[
        : settings.LODESTONE_SIDEBAR_PAGE_SIZE
    ]
    return render(request, "accounts/api_keys.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def api_keys_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render(request, {})
    form = ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        return _render(request, {"form": form}, status=422)
    try:
        api_key, key = services.api_key_create(
            user=request.user,  # type: ignore[arg-type]
            name=form.cleaned_data["name"],
            expires_at=form.expires_at(),
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return _render(request, {"form": form}, status=422)
    # Rendered, not redirected: the key exists only in this response and is never stored.
    response = _render(request, {"created": api_key, "created_key": key})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_key_revoke_view(request: HtmxHttpRequest, api_key_id: int) -> HttpResponse:
    api_key = selectors.api_key_get(user=request.user, pk=api_key_id)  # type: ignore[arg-type]
    if api_key is None:
        raise Http404("No such API key among yours.")
    services.api_key_revoke(api_key=api_key)
    if _is_fragment(request):
        return _render(request, {"revoked": api_key})
    return redirect("accounts:api-keys")
