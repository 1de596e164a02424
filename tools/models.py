"""Governed tools: a ``Tool`` row per callable tool, ``ToolGrant`` per agent and tool, and a
``ToolInvocation`` for every call an agent (or a person) makes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator
from django.db import models

from agents import crypto

# Tool names travel to the model as function names: identifiers, as OpenAI and AutoGen require.
tool_name_validator = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
    "Use letters, digits and underscores, starting with a letter (tool names are function names).",
)


class Tool(models.Model):
    class Kind(models.TextChoices):
        BUILTIN = "builtin", "Builtin (registered in code)"
        PYTHON = "python", "Python (runs in the sandbox)"
        HTTP = "http", "HTTP request"
        MCP = "mcp", "MCP server tool"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending approval"
        APPROVED = "approved", "Approved"
        DISABLED = "disabled", "Disabled"

    name = models.CharField(max_length=64, unique=True, validators=[tool_name_validator])
    description = models.TextField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    parameters = models.JSONField(
        default=dict, blank=True, help_text="JSON schema of the arguments (an object schema)."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    source = models.TextField(blank=True, help_text="Python tools: the source of the one function.")
    config = models.JSONField(
        default=dict,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text="Kind-specific settings: HTTP method/url_template/headers, MCP server id and tool name.",
    )
    secret_headers_encrypted = models.TextField(blank=True, editable=False)
    timeout_seconds = models.PositiveIntegerField(default=30)
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("approve_tool", "Can approve or disable tools"),
            ("invoke_tool", "Can invoke tools directly"),
            # Approved tools; a pending or disabled one also needs approve_tool (see tool_test_run).
            ("test_tool", "Can test-run any tool"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_usable(self) -> bool:
        return self.status == self.Status.APPROVED

    def secret_headers(self) -> dict[str, str]:
        import json

        text = crypto.decrypt(self.secret_headers_encrypted)
        return dict(json.loads(text)) if text else {}

    def set_secret_headers(self, headers: dict[str, str]) -> None:
        import json

        self.secret_headers_encrypted = crypto.encrypt(json.dumps(headers)) if headers else ""

    def clean(self) -> None:
        if not isinstance(self.parameters, dict) or self.parameters.get("type", "object") != "object":
            raise ValidationError({"parameters": "Parameters must be a JSON schema of type object."})
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "Config must be a JSON object."})
        if self.kind == self.Kind.HTTP:
            from tools.kinds.http import METHODS, check_url_template, template_fields

            problem = check_url_template(str(self.config.get("url_template", "")))
            if problem:
                raise ValidationError({"config": f"url_template: {problem}."})
            if str(self.config.get("method", "GET")).upper() not in METHODS:
                raise ValidationError({"config": f"method: use one of {', '.join(METHODS)}."})
            declared = set((self.parameters or {}).get("properties", {}))
            missing = [f for f in template_fields(self.config["url_template"]) if f not in declared]
            if missing:
                raise ValidationError({"parameters": f"The URL uses {', '.join(missing)}: declare them as parameters."})


class ToolVersion(models.Model):
    """Every version of a tool's definition is kept; the tool row holds the current one."""

    tool = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    description = models.TextField()
    parameters = models.JSONField(default=dict)
    source = models.TextField(blank=True)
    config = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tool", "-version"]
        constraints = [models.UniqueConstraint(fields=["tool", "version"], name="tool_version_unique")]

    def __str__(self) -> str:
        return f"{self.tool.name} v{self.version}"


class ToolGrant(models.Model):
    """Agent ``agent`` may call ``tool``; with ``needs_approval`` each call waits for the user.
    A ``requested`` grant (asked for through ``find_tools``) is not usable until staff activate it."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REQUESTED = "requested", "Requested (awaiting an administrator)"

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="tool_grants")
    tool = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="grants")
    needs_approval = models.BooleanField(default=False, help_text="Ask the user in the chat before each call.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent", "tool"]
        constraints = [models.UniqueConstraint(fields=["agent", "tool"], name="tool_grant_unique")]

    def __str__(self) -> str:
        return f"{self.agent} -> {self.tool}"


class ToolInvocation(models.Model):
    """One call of a tool: who, what, with which arguments, how it ended, how long it took."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"
        TIMEOUT = "timeout", "Timed out"
        INVALID = "invalid", "Invalid arguments"
        DENIED = "denied", "Denied"

    tool = models.ForeignKey(Tool, null=True, blank=True, on_delete=models.SET_NULL, related_name="invocations")
    tool_name = models.CharField(max_length=64)
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_invocations"
    )
    conversation = models.ForeignKey(
        "conversations.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey("conversations.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    call_id = models.CharField(max_length=200, blank=True)
    arguments = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    result_summary = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tool", "created_at"]), models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.status})"


def schema_of(tool: Tool) -> dict[str, Any]:
    """The parameters schema as AutoGen and OpenAI expect it (an object with properties)."""
    schema = dict(tool.parameters or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


class ToolApproval(models.Model):
    """A call waiting for the user's yes or no in the chat (grants with ``needs_approval``)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        EXPIRED = "expired", "Expired"

    tool = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="approvals")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey("conversations.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    call_id = models.CharField(max_length=200, blank=True)
    arguments = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.tool} approval ({self.status})"


class McpServer(models.Model):
    """An MCP server whose tools are discovered and registered as ``Tool`` rows of kind ``mcp``."""

    class Transport(models.TextChoices):
        STDIO = "stdio", "Command (stdio)"
        STREAMABLE_HTTP = "streamable_http", "Streamable HTTP URL"
        SSE = "sse", "SSE URL"

    name = models.CharField(
        max_length=32,
        unique=True,
        validators=[tool_name_validator],
        help_text="Prefix of its tools' names: <name>_<tool>.",
    )
    transport = models.CharField(max_length=20, choices=Transport.choices, default=Transport.STDIO)
    command = models.CharField(max_length=500, blank=True, help_text="stdio: the program to start.")
    args = models.JSONField(default=list, blank=True, help_text='stdio: its arguments, e.g. ["server.py"].')
    env = models.JSONField(default=dict, blank=True, help_text="stdio: extra environment variables.")
    url = models.URLField(blank=True, help_text="Streamable HTTP or SSE: the server's URL.")
    secret_headers_encrypted = models.TextField(blank=True, editable=False)
    timeout_seconds = models.PositiveIntegerField(default=30)
    enabled = models.BooleanField(default=True)
    last_discovered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP server"

    def __str__(self) -> str:
        return self.name

    def secret_headers(self) -> dict[str, str]:
        import json

        text = crypto.decrypt(self.secret_headers_encrypted)
        return dict(json.loads(text)) if text else {}

    def set_secret_headers(self, headers: dict[str, str]) -> None:
        import json

        self.secret_headers_encrypted = crypto.encrypt(json.dumps(headers)) if headers else ""

    def clean(self) -> None:
        if self.transport == self.Transport.STDIO and not self.command:
            raise ValidationError({"command": "A stdio server needs a command."})
        if self.transport != self.Transport.STDIO and not self.url:
            raise ValidationError({"url": "An HTTP server needs its URL."})
        if not isinstance(self.args, list) or not all(isinstance(a, str) for a in self.args):
            raise ValidationError({"args": "Arguments must be a list of strings."})
        if not isinstance(self.env, dict):
            raise ValidationError({"env": "The environment must be a JSON object."})
