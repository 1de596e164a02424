from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet

from agents.factory import model_calls_tools, tools_not_offered_note
from agents.models import Agent, Team, TeamMember
from agents.providers import ProviderError
from tools.selectors import granted_tool_specs


def agent_list() -> QuerySet[Agent]:
    return Agent.objects.select_related("model_config").order_by("name")


def team_list() -> QuerySet[Team]:
    members = TeamMember.objects.select_related("agent").order_by("position", "id")
    return Team.objects.prefetch_related(Prefetch("members", queryset=members)).order_by("name")


def team_agents(team: Team) -> list[Agent]:
    """The team's agents in speaking order, with their model configs."""
    members = team.members.select_related("agent__model_config").order_by("position", "id")
    return [member.agent for member in members]


def tools_not_offered_notes(agents: Iterable[Agent]) -> list[str]:
    """One sentence per agent whose granted tools its model cannot call: ``build_agent`` leaves
    those tools out (AutoGen would refuse them), and people should know why none is used."""
    agents = list(agents)
    specs = granted_tool_specs(agent.pk for agent in agents)
    notes = []
    for agent in agents:
        names = [spec.name for spec in specs.get(agent.pk, [])]
        if not names:
            continue
        try:
            if model_calls_tools(agent.model_config):
                continue
        except ProviderError:  # a model that cannot be loaded at all fails the run, with its reason
            continue
        notes.append(f"{agent.name}: {tools_not_offered_note(agent.model_config, names)}")
    return notes
