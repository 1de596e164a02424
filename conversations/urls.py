from django.urls import path

from conversations import views

app_name = "conversations"
urlpatterns = [
    path("", views.conversation_list_view, name="list"),
    path("new/", views.conversation_new_view, name="new"),
    path("sidebar/", views.sidebar_more_view, name="sidebar-more"),
    path("<int:conversation_id>/", views.conversation_detail_view, name="detail"),
    path("<int:conversation_id>/messages/", views.message_post_view, name="message-post"),
    path("<int:conversation_id>/history/", views.conversation_history_view, name="history"),
    path("<int:conversation_id>/cancel/", views.run_cancel_view, name="run-cancel"),
    path("<int:conversation_id>/pause/", views.run_pause_view, name="run-pause"),
    path("<int:conversation_id>/resume/", views.run_resume_view, name="run-resume"),
]
