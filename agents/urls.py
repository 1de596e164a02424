from django.urls import path

from agents import views

app_name = "agents"

urlpatterns = [
    path("teams/", views.team_list, name="team-list"),
    path("teams/<slug:slug>/", views.team_visual, name="team-visual"),
]
