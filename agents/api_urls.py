from django.urls import path

from agents import apis, component_apis

urlpatterns = [
    path("agents/", apis.AgentListApi.as_view(), name="api-agent-list"),
    path("teams/", apis.TeamListApi.as_view(), name="api-team-list"),
    path("teams/<slug:slug>/export/", component_apis.TeamExportApi.as_view(), name="api-team-export"),
    path("components/import/", component_apis.ComponentImportApi.as_view(), name="api-components-import"),
]
