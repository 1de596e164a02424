from django.urls import path

from tools import views

app_name = "tools"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("<int:tool_id>/approve/", views.tool_approve_view, name="approve"),
    path("<int:tool_id>/disable/", views.tool_disable_view, name="disable"),
    path("<int:tool_id>/test/", views.tool_test_view, name="test"),
    path("approvals/<int:approval_id>/answer/", views.approval_answer_view, name="approval-answer"),
    path("grants/<int:grant_id>/activate/", views.grant_activate_view, name="grant-activate"),
]
