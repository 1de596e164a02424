from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path

from tools import services
from tools.models import McpServer, Tool, ToolApproval, ToolGrant, ToolInvocation, ToolVersion


class ToolForm(forms.ModelForm):
    secret_headers = forms.JSONField(
        required=False,
        help_text='HTTP tools: headers sent with every request, e.g. {"Authorization": "Bearer ..."}. '
        "Stored encrypted; leave empty to keep the current ones.",
    )
    clear_secret_headers = forms.BooleanField(required=False, help_text="Remove the stored secret headers.")

    class Meta:
        model = Tool
        fields = ["name", "description", "kind", "parameters", "status", "source", "config", "timeout_seconds"]


class ToolVersionInline(admin.TabularInline):
    model = ToolVersion
    extra = 0
    can_delete = False
    fields = ["version", "description", "created_by", "created_at"]
    readonly_fields = ["version", "description", "created_by", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ToolGrantInline(admin.TabularInline):
    model = ToolGrant
    extra = 0
    fields = ["agent", "needs_approval", "status", "created_by"]
    readonly_fields = ["created_by"]


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    form = ToolForm
    list_display = ["name", "kind", "status", "version", "has_secret_headers", "updated_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "description"]
    readonly_fields = ["version", "created_by", "approved_by", "approved_at", "created_at", "updated_at"]
    inlines = [ToolGrantInline, ToolVersionInline]
    actions = ["approve", "disable"]
    change_form_template = "admin/tools/tool/change_form.html"

    def get_urls(self) -> list[Any]:
        custom = [
            path(
                "<int:tool_id>/test/",
                self.admin_site.admin_view(self.test_run_view),
                name="tools_tool_test",
            )
        ]
        return custom + super().get_urls()

    def test_run_view(self, request: HttpRequest, tool_id: int) -> HttpResponse:
        """The dashboard's test run, in the admin: the same service and the same rule (who may
        test-run which tool), recorded as an invocation and in the audit log."""
        tool = get_object_or_404(Tool, pk=tool_id)
        refusal = services.tool_test_run_refusal(tool=tool, user=request.user)
        if refusal:
            raise PermissionDenied(refusal)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": tool,
            "title": f"Test run: {tool.name}",
            "arguments": request.POST.get("arguments", "{}"),
        }
        status = 200
        if request.method == "POST":
            try:
                context["outcome"] = services.tool_test_run(
                    tool=tool,
                    raw_arguments=context["arguments"],
                    user=request.user,  # type: ignore[arg-type]
                )
            except ValidationError as exc:
                context["error"] = " ".join(exc.messages)
                status = 400
        return TemplateResponse(request, "admin/tools/tool/test_run.html", context, status=status)

    @admin.display(boolean=True, description="Secret headers")
    def has_secret_headers(self, obj: Tool) -> bool:
        return bool(obj.secret_headers_encrypted)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.has_perm("tools.approve_tool"):
            fields.append("status")  # only approvers change a tool's status
        return fields

    def save_model(self, request: HttpRequest, obj: Tool, form: Any, change: bool) -> None:
        if form.cleaned_data.get("clear_secret_headers"):
            obj.set_secret_headers({})
        elif form.cleaned_data.get("secret_headers"):
            obj.set_secret_headers(dict(form.cleaned_data["secret_headers"]))
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        changed_definition = change and any(
            f in form.changed_data for f in ("description", "parameters", "source", "config")
        )
        if changed_definition:
            obj.version += 1
        super().save_model(request, obj, form, change)
        if not change or changed_definition:
            ToolVersion.objects.create(
                tool=obj,
                version=obj.version,
                description=obj.description,
                parameters=obj.parameters,
                source=obj.source,
                config=obj.config,
                created_by=request.user,  # type: ignore[misc]
            )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        instances = formset.save(commit=False)
        for instance in instances:
            if isinstance(instance, ToolGrant) and instance.created_by_id is None:
                instance.created_by = request.user  # type: ignore[assignment]
            instance.save()
        for deleted in formset.deleted_objects:
            deleted.delete()
        formset.save_m2m()

    @admin.action(description="Approve the selected tools", permissions=["approve"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Tool]) -> None:
        for tool in queryset:
            services.tool_approve(tool=tool, by=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Approved {queryset.count()} tool(s).")

    @admin.action(description="Disable the selected tools", permissions=["approve"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Tool]) -> None:
        for tool in queryset:
            services.tool_disable(tool=tool, by=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Disabled {queryset.count()} tool(s).")

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tools.approve_tool")


@admin.register(ToolGrant)
class ToolGrantAdmin(admin.ModelAdmin):
    list_display = ["agent", "tool", "needs_approval", "status", "created_at"]
    list_filter = ["status", "needs_approval", "tool"]
    search_fields = ["agent__name", "agent__slug", "tool__name"]
    actions = ["activate"]

    def save_model(self, request: HttpRequest, obj: ToolGrant, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    @admin.action(description="Activate the selected (requested) grants", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[ToolGrant]) -> None:
        for grant in queryset:
            services.tool_grant_activate(grant=grant, by=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Activated {queryset.count()} grant(s).")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ToolInvocation)
class ToolInvocationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tool_name", "agent", "user", "status", "duration_ms"]
    list_filter = ["status", "tool"]
    search_fields = ["tool_name", "result_summary", "error"]
    date_hierarchy = "created_at"


@admin.register(ToolApproval)
class ToolApprovalAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tool", "agent", "conversation", "status", "decided_by", "decided_at"]
    list_filter = ["status"]


class AgentToolGrantInline(admin.TabularInline):
    """On the agent's admin page: the tools it is granted (``Agent.tool_names`` is deprecated)."""

    model = ToolGrant
    extra = 0
    fields = ["tool", "needs_approval", "status"]
    verbose_name = "tool grant"


class McpServerForm(forms.ModelForm):
    url = forms.URLField(required=False, assume_scheme="https", help_text="Streamable HTTP or SSE: the server's URL.")
    secret_headers = forms.JSONField(
        required=False,
        help_text="HTTP servers: headers for every request (stored encrypted; leave empty to keep).",
    )

    class Meta:
        model = McpServer
        fields = ["name", "transport", "command", "args", "env", "url", "timeout_seconds", "enabled"]


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):
    form = McpServerForm
    list_display = ["name", "transport", "command", "url", "enabled", "last_discovered_at", "last_error"]
    readonly_fields = ["last_discovered_at", "last_error"]
    actions = ["discover"]

    def save_model(self, request: HttpRequest, obj: McpServer, form: Any, change: bool) -> None:
        if form.cleaned_data.get("secret_headers"):
            obj.set_secret_headers(dict(form.cleaned_data["secret_headers"]))
        super().save_model(request, obj, form, change)

    # It starts the configured command (stdio) or calls the URL and registers tools: a change.
    @admin.action(description="Discover tools (new ones are pending approval)", permissions=["change"])
    def discover(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            try:
                rows = services.mcp_server_discover(server=server, by=request.user)  # type: ignore[arg-type]
            except ValidationError as exc:
                messages.error(request, f"{server}: {' '.join(exc.messages)}")
            else:
                messages.success(request, f"{server}: {len(rows)} tool(s) registered.")
