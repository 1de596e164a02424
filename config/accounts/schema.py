"""The API keys' security scheme in the OpenAPI schema (drf-spectacular), loaded at app start."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "config.accounts.authentication.ApiKeyAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`: an API key made on the API keys page or by `manage.py create_api_key`.",
        }
