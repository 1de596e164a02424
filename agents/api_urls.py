from django.urls import path

from agents import apis

urlpatterns = [
    path("agents/", apis.AgentListApi.as_view(), name="api-agent-list"),
    path("teams/", apis.TeamListApi.as_view(), name="api-team-list"),
]
