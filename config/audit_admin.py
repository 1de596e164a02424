"""The audit log in the admin, read-only: Django admin's own form saves and the services' entries
(``config.common.audit``) in one list. Seen by users with ``admin.view_logentry``; nobody adds,
changes or deletes an entry here. Imported by ``config.urls`` (``config`` is not an app, so admin
autodiscovery would not find it)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.http import HttpRequest


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    list_display = ["action_time", "user", "action_flag", "content_type", "object_repr", "message"]
    list_filter = ["user", "action_flag", "content_type"]
    search_fields = ["change_message", "object_repr"]
    date_hierarchy = "action_time"
    list_select_related = ["user", "content_type"]
    fields = ("action_time", "user", "action_flag", "content_type", "object_id", "object_repr", "message")
    readonly_fields = fields

    @admin.display(description="Message")
    def message(self, obj: LogEntry) -> str:
        # Admin form saves store structured JSON; services store plain text; this renders both.
        return obj.get_change_message()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
