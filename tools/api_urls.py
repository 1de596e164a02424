from django.urls import path

from tools import apis

urlpatterns = [
    path("", apis.ToolListCreateApi.as_view(), name="api-tool-list"),
    path("invocations/", apis.InvocationListApi.as_view(), name="api-tool-invocations"),
    path("approvals/<int:approval_id>/", apis.ApprovalAnswerApi.as_view(), name="api-tool-approval"),
    path("<str:name>/", apis.ToolDetailApi.as_view(), name="api-tool-detail"),
    path("<str:name>/invoke/", apis.ToolInvokeApi.as_view(), name="api-tool-invoke"),
]
