from django.urls import path

from conversations import apis

urlpatterns = [
    path("conversations/", apis.ConversationListCreateApi.as_view(), name="api-conversation-list"),
    path("conversations/<int:conversation_id>/", apis.ConversationDetailApi.as_view(), name="api-conversation-detail"),
    path(
        "conversations/<int:conversation_id>/messages/",
        apis.MessageListCreateApi.as_view(),
        name="api-conversation-messages",
    ),
    path(
        "conversations/<int:conversation_id>/usage/",
        apis.ConversationUsageApi.as_view(),
        name="api-conversation-usage",
    ),
    path("runs/<int:run_id>/", apis.RunDetailApi.as_view(), name="api-run-detail"),
    path("runs/<int:run_id>/cancel/", apis.RunCancelApi.as_view(), name="api-run-cancel"),
    path("runs/<int:run_id>/input/", apis.RunInputApi.as_view(), name="api-run-input"),
    path("runs/<int:run_id>/pause/", apis.RunPauseApi.as_view(), name="api-run-pause"),
    path("runs/<int:run_id>/resume/", apis.RunResumeApi.as_view(), name="api-run-resume"),
    path("monitoring/", apis.MonitoringApi.as_view(), name="api-monitoring"),
]
