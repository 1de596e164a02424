from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_builtin_tools(sender: AppConfig, **kwargs: Any) -> None:
    # post_migrate is Django's sanctioned hook for rows that code defines; the sync is idempotent.
    from tools.services import tools_sync_builtin

    tools_sync_builtin(using=kwargs.get("using", "default"))


class ToolsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tools"
    verbose_name = "Tools"

    def ready(self) -> None:
        post_migrate.connect(_sync_builtin_tools, sender=self, dispatch_uid="tools_sync_builtin")
