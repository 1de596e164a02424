from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import (
    api,
    audit_admin,  # noqa: F401 - registers the read-only audit log in the admin
)
from conversations import openai_api
from conversations.views import monitoring_view

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="conversations:list", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/api-keys/", include("config.accounts.urls")),
    path("conversations/", include("conversations.urls")),
    path("agents/", include("agents.urls")),
    path("memory/", include("memory.urls")),
    path("tools/", include("tools.urls")),
    path("monitoring/", monitoring_view, name="monitoring"),
    path("api/", include("config.api_urls")),
    path("v1/models", openai_api.models_view, name="openai-models"),
    path("v1/chat/completions", openai_api.chat_completions_view, name="openai-chat-completions"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file, so script-src stays 'self'; its
    # page and the UI itself set inline styles, allowed on this page only.
    path(
        "api/docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    re_path(r"^api/", api.not_found),  # last: whatever no endpoint above matched
]
