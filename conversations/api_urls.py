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
    path("runs/<int:run_id>/", apis.RunDetailApi.as_view(), name="api-run-detail"),
    path("runs/<int:run_id>/cancel/", apis.RunCancelApi.as_view(), name="api-run-cancel"),
]
