from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from memory.models import Experience, ExperienceRevision, MirrorOutbox


@admin.register(Experience)
class ExperienceAdmin(admin.ModelAdmin):
    """Read-mostly: writes that must reach the vector store and the mirror go through the services
    (the Memory page, the API), so the admin shows rows and their provenance."""

    list_display = ["id", "kind", "short_text", "owner", "agent", "importance", "weight", "created_at"]
    list_filter = ["kind", "agent"]
    search_fields = ["text"]
    readonly_fields = [
        "owner",
        "agent",
        "conversation",
        "run",
        "kind",
        "text",
        "importance",
        "weight",
        "metadata",
        "consolidated_into",
        "source_messages",
        "content_hash",
        "embedding_model",
        "chunk_count",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="Text")
    def short_text(self, obj: Experience) -> str:
        return obj.text[:80]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ExperienceRevision)
class ExperienceRevisionAdmin(admin.ModelAdmin):
    """The history of memories: written by the services only."""

    list_display = ["id", "memory_id", "cause", "owner", "actor", "run", "created_at"]
    list_filter = ["cause"]
    search_fields = ["old_text", "new_text"]
    readonly_fields = [
        "experience",
        "memory_id",
        "owner",
        "cause",
        "old_text",
        "new_text",
        "actor",
        "run",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(MirrorOutbox)
class MirrorOutboxAdmin(admin.ModelAdmin):
    list_display = ["id", "experience_id", "op", "attempts", "next_attempt_at", "last_error", "created_at"]
    readonly_fields = ["experience_id", "op", "attempts", "next_attempt_at", "last_error", "created_at"]
