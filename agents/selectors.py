from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from agents.models import Agent, Team, TeamMember


def agent_list() -> QuerySet[Agent]:
    return Agent.objects.select_related("model_config").order_by("name")


def team_list() -> QuerySet[Team]:
    members = TeamMember.objects.select_related("agent").order_by("position", "id")
    return Team.objects.prefetch_related(Prefetch("members", queryset=members)).order_by("name")
