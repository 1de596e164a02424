from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from agents.models import Agent, Team


class Conversation(models.Model):
    """A thread between one user and one team or agent. The team's AutoGen state lives here so
    the next message continues where the last run stopped."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="conversations")
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="conversations")
    last_seq = models.PositiveIntegerField(default=0)
    # AutoGen's saved state holds datetimes: the Django encoder writes them as ISO strings.
    team_state = models.JSONField(null=True, blank=True, editable=False, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        permissions = [("view_monitoring", "Can view the monitoring board (runs, agents, memory, tools)")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(team__isnull=False, agent__isnull=True) | models.Q(team__isnull=True, agent__isnull=False)
                ),
                name="conversation_team_xor_agent",
                violation_error_message="A conversation talks to exactly one team or one agent.",
            ),
        ]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self) -> str:
        return self.title

    @property
    def counterpart_name(self) -> str:
        if self.team_id is not None:
            return self.team.name  # type: ignore[union-attr]
        return self.agent.name  # type: ignore[union-attr]


class Run(models.Model):
    """One execution of the team in answer to one user message."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        AWAITING_INPUT = "awaiting_input", "Awaiting input"

    # A run waiting for the user (a question, a tool approval) still holds the conversation.
    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING, Status.AWAITING_INPUT)
    FINISHED_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    # Pause: stop now (the turn in flight is dropped) and wait for the user (awaiting_input), not end.
    pause_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    stop_reason = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Renewed by the executing process while the run is active: a stale one means it is gone.
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one queued or running run per conversation: messages are answered in order.
            models.UniqueConstraint(
                fields=["conversation"],
                condition=models.Q(status__in=["queued", "running", "awaiting_input"]),
                name="run_one_active_per_conversation",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class Message(models.Model):
    """Everything said in a conversation, in order: ``seq`` is gapless per conversation."""

    class Type(models.TextChoices):
        USER = "user", "User message"
        TEXT = "text", "Agent text"
        TOOL_CALL = "tool_call", "Tool call"
        TOOL_RESULT = "tool_result", "Tool result"
        TOOL_SUMMARY = "tool_summary", "Tool summary"
        THOUGHT = "thought", "Thought"
        HANDOFF = "handoff", "Handoff"
        STOP = "stop", "Stop"
        ERROR = "error", "Error"
        MEMORY = "memory", "Memory recall"
        APPROVAL = "approval", "Tool approval request"
        INPUT_REQUEST = "input_request", "Question to the user"
        LEDGER = "ledger", "Plan or progress ledger"
        ROUTING = "routing", "Routing decision"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    seq = models.PositiveIntegerField()
    source = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=Type.choices)
    content = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.source}: {self.content[:40]}"
