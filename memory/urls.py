from django.urls import path

from memory import views

app_name = "memory"
urlpatterns = [
    path("", views.memory_list_view, name="list"),
    path("<int:experience_id>/delete/", views.memory_delete_view, name="delete"),
]
