from django.urls import include, path

urlpatterns = [
    path("", include("agents.api_urls")),
    path("", include("conversations.api_urls")),
    path("memory/", include("memory.api_urls")),
    path("tools/", include("tools.api_urls")),
]
