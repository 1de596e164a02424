"""Forms of the browser chat: they parse and show input; the rules live in the services."""

from __future__ import annotations

from typing import Any

from django import forms

from agents import selectors as agent_selectors
from agents.models import Agent, Team

TEAM_PREFIX = "team:"
AGENT_PREFIX = "agent:"


class ConversationForm(forms.Form):
    """Whom to talk to (one team or one agent) and an optional title."""

    counterpart = forms.ChoiceField(label="Talk to", choices=())
    title = forms.CharField(label="Title", max_length=200, required=False, strip=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teams = {str(t.pk): t for t in agent_selectors.team_list()}
        self.agents = {str(a.pk): a for a in agent_selectors.agent_list()}
        self.fields["counterpart"].choices = [  # type: ignore[attr-defined]
            ("Teams", [(f"{TEAM_PREFIX}{pk}", t.name) for pk, t in self.teams.items()]),
            ("Single agents", [(f"{AGENT_PREFIX}{pk}", a.name) for pk, a in self.agents.items()]),
        ]

    def counterpart_kwargs(self) -> dict[str, Team | Agent]:
        """``{"team": ...}`` or ``{"agent": ...}`` for ``conversation_create``."""
        value: str = self.cleaned_data["counterpart"]
        if value.startswith(TEAM_PREFIX):
            return {"team": self.teams[value.removeprefix(TEAM_PREFIX)]}
        return {"agent": self.agents[value.removeprefix(AGENT_PREFIX)]}


class MessageForm(forms.Form):
    """The composer. Emptiness and length are checked by ``services.message_post``, so the page,
    the socket and the API give the same answers."""

    text = forms.CharField(label="Message", required=False, strip=False, widget=forms.Textarea)
