from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from agents.models import Agent, ModelConfig, Team, TeamMember
from tools.admin import AgentToolGrantInline


class ModelConfigForm(forms.ModelForm):
    base_url = forms.URLField(required=False, assume_scheme="https", help_text="For OpenAI-compatible endpoints.")
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = ModelConfig
        fields = ["name", "provider", "model", "base_url", "options"]


@admin.register(ModelConfig)
class ModelConfigAdmin(admin.ModelAdmin):
    form = ModelConfigForm
    list_display = ["name", "provider", "model", "base_url", "has_api_key", "updated_at"]
    list_filter = ["provider"]
    search_fields = ["name", "model"]

    @admin.display(boolean=True, description="API key")
    def has_api_key(self, obj: ModelConfig) -> bool:
        return obj.has_api_key

    def save_model(self, request: HttpRequest, obj: ModelConfig, form: Any, change: bool) -> None:
        if form.cleaned_data.get("clear_api_key"):
            obj.set_api_key("")
        elif form.cleaned_data.get("api_key"):
            obj.set_api_key(form.cleaned_data["api_key"])
        super().save_model(request, obj, form, change)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "model_config", "updated_at"]
    list_filter = ["model_config"]
    search_fields = ["name", "slug", "description"]
    # Tools come from grants; the old tool_names field is deprecated and read-only here.
    inlines = [AgentToolGrantInline]
    readonly_fields = ["tool_names"]


class TeamMemberInline(admin.TabularInline):
    model = TeamMember
    extra = 1
    ordering = ["position"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "max_messages", "stop_word"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    inlines = [TeamMemberInline]
