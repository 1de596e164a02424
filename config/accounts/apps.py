from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Who a request is: hashed API keys and the request limits that guard them. The lowest app:
    it imports none of the others, and every API (memory, tools, agents, conversations) uses it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "config.accounts"
    label = "accounts"

    def ready(self) -> None:
        # Registers the API keys' security scheme with drf-spectacular.
        from config.accounts import schema  # noqa: F401
