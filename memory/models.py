"""Experiences: what agents did and learned. The Django database is the source of truth; vectors
live in the vector store (ids derived from the row, see ``memory.services``) and Firestore is an
optional mirror fed through ``MirrorOutbox``."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from agents.models import Agent
from conversations.models import Conversation, Run


class Experience(models.Model):
    """One memory. ``owner`` is null for a shared memory every user can see."""

    class Kind(models.TextChoices):
        EPISODIC = "episodic", "Episodic (something that happened)"
        SEMANTIC = "semantic", "Semantic (something learned)"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="experiences",
        help_text="Empty for a shared memory.",
    )
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiences")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiences"
    )
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiences")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EPISODIC)
    text = models.TextField()
    importance = models.FloatField(default=0.5, help_text="0..1: how much this memory matters.")
    weight = models.FloatField(default=1.0, help_text="0..1: lowered when merged into a consolidated memory.")
    metadata = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    consolidated_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sources",
        help_text="The semantic memory this one was merged into (its provenance).",
    )
    # Provenance: the messages this memory was learned or recorded from (any conversation of the
    # owner's; an update adds the messages that changed it). The Memory page links to them.
    source_messages = models.ManyToManyField(
        "conversations.Message", blank=True, related_name="+", help_text="The messages it came from."
    )
    content_hash = models.CharField(max_length=64, db_index=True, editable=False)
    # How the vectors were made: ``<embedder>:<dimension>`` and how many chunks (one vector each).
    embedding_model = models.CharField(max_length=100, blank=True, editable=False)
    chunk_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("share_experience", "Can store, change and delete shared memories (seen by every user)")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(importance__gte=0) & models.Q(importance__lte=1),
                name="experience_importance_0_1",
                violation_error_message="Importance is between 0 and 1.",
            ),
            models.CheckConstraint(
                condition=models.Q(weight__gte=0) & models.Q(weight__lte=1),
                name="experience_weight_0_1",
                violation_error_message="Weight is between 0 and 1.",
            ),
            models.CheckConstraint(
                condition=~models.Q(text=""), name="experience_text_not_empty", violation_error_message="Empty text."
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "kind", "-created_at"]),
            models.Index(fields=["agent", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}: {self.text[:40]}"

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None


class ExperienceRevision(models.Model):
    """One change of a memory's text, or its deletion: what it said before and after, and who or
    what changed it. A deleted memory's revisions stay (``experience`` null, ``memory_id`` kept)."""

    class Cause(models.TextChoices):
        MODEL_ADD = "model_add", "Learned from a run"
        MODEL_UPDATE = "model_update", "Updated from a run"
        MODEL_DELETE = "model_delete", "Deleted from a run"
        USER_EDIT = "user_edit", "Corrected by a user"
        USER_DELETE = "user_delete", "Deleted by a user"
        CONSOLIDATION = "consolidation", "Merged by consolidation"
        EDIT = "edit", "Changed"
        DELETE = "delete", "Deleted"

    experience = models.ForeignKey(
        Experience, null=True, blank=True, on_delete=models.SET_NULL, related_name="revisions"
    )
    memory_id = models.PositiveBigIntegerField(db_index=True, help_text="The memory's id, kept once it is deleted.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="experience_revisions",
        help_text="Whose memory it is (empty: a shared one).",
    )
    cause = models.CharField(max_length=16, choices=Cause.choices)
    old_text = models.TextField(blank=True)
    new_text = models.TextField(blank=True, help_text="Empty when the memory was deleted.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The user who made the change, if a user did.",
    )
    run = models.ForeignKey(
        "conversations.Run",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The run the model learned the change from, if the model made it.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "cause", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.cause} of memory {self.memory_id}"

    @property
    def is_deletion(self) -> bool:
        return self.cause in (self.Cause.MODEL_DELETE, self.Cause.USER_DELETE, self.Cause.DELETE)


class MirrorOutbox(models.Model):
    """A pending Firestore mirror write, stored in the same transaction as the experience change.

    The drainer reads the experience's current row when it sends: an ``upsert`` of a row that is
    gone becomes a delete, so entries may be coalesced or replayed safely.
    """

    class Op(models.TextChoices):
        UPSERT = "upsert", "Create or update"
        DELETE = "delete", "Delete"

    experience_id = models.BigIntegerField(db_index=True)
    op = models.CharField(max_length=8, choices=Op.choices)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.op} experience {self.experience_id}"
