"""Forms of the browser chat: they parse and show input; the rules live in the services."""

from __future__ import annotations

from typing import Any

from django import forms

from agents import selectors as agent_selectors
from agents.models import Agent, Team

TEAM_PREFIX = "team:"
AGENT_PREFIX = "agent:"


class ConversationForm(forms.Form):
    """Whom to talk to (one team or one agent), an optional title and an optional first message
    (sent by a starter prompt's button; its length is checked by ``services.message_post``)."""

    counterpart = forms.ChoiceField(label="Talk to", choices=())
    title = forms.CharField(label="Title", max_length=200, required=False, strip=True)
    first_message = forms.CharField(label="First message", required=False, strip=True)

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

    def counterpart_for(self, value: str | None) -> Team | Agent | None:
        """The team or agent a choice value (``team:<id>``, ``agent:<id>``) names, if offered."""
        value = value or ""
        if value.startswith(TEAM_PREFIX):
            return self.teams.get(value.removeprefix(TEAM_PREFIX))
        if value.startswith(AGENT_PREFIX):
            return self.agents.get(value.removeprefix(AGENT_PREFIX))
        return None

    def chosen(self) -> tuple[str, Team | Agent | None]:
        """The choice the page shows as selected (the submitted or initial one when it is offered,
        else the first), with its team or agent."""
        value = self["counterpart"].value()
        if self.counterpart_for(value) is None:
            first = next(iter(self.teams), None)
            value = f"{TEAM_PREFIX}{first}" if first else next((f"{AGENT_PREFIX}{pk}" for pk in self.agents), "")
        return value, self.counterpart_for(value)


class MessageForm(forms.Form):
    """The composer. Emptiness and length are checked by ``services.message_post``, so the page,
    the socket and the API give the same answers."""

    text = forms.CharField(label="Message", required=False, strip=False, widget=forms.Textarea)
