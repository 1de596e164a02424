from django.urls import path

from memory import views

app_name = "memory"
urlpatterns = [
    path("", views.memory_list_view, name="list"),
    path("<int:experience_id>/delete/", views.memory_delete_view, name="delete"),
    path("<int:experience_id>/edit/", views.memory_edit_view, name="edit"),
    path("<int:experience_id>/", views.memory_item_view, name="item"),
    path("<int:experience_id>/history/", views.memory_history_view, name="history"),
]
