from django.urls import path

from config.accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.api_keys_view, name="api-keys"),
    path("<int:api_key_id>/revoke/", views.api_key_revoke_view, name="api-key-revoke"),
]
