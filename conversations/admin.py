from django.contrib import admin

from conversations.models import Conversation, Message, Run


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "team", "agent", "last_seq", "updated_at"]
    list_filter = ["team", "agent"]
    search_fields = ["title", "owner__username"]
    raw_id_fields = ["owner"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "status", "created_at", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in Run._meta.fields]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["conversation", "seq", "source", "type", "created_at"]
    list_filter = ["type"]
    readonly_fields = [f.name for f in Message._meta.fields]
