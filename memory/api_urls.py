from django.urls import path

from memory import apis

urlpatterns = [
    path("experiences/", apis.ExperienceListCreateApi.as_view(), name="api-memory-experience-list"),
    path(
        "experiences/<int:experience_id>/",
        apis.ExperienceDetailApi.as_view(),
        name="api-memory-experience-detail",
    ),
    path(
        "experiences/<int:experience_id>/history/",
        apis.ExperienceHistoryApi.as_view(),
        name="api-memory-experience-history",
    ),
    path("search/", apis.MemorySearchApi.as_view(), name="api-memory-search"),
]
