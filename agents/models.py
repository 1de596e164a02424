from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from agents import crypto

# AutoGen agent names must be valid Python identifiers; slugs double as those names.
MAX_STARTER_PROMPTS = 8
MAX_STARTER_PROMPT_CHARS = 500


def validate_starter_prompts(value: Any) -> None:
    """A short list of short, non-empty strings: what the new-conversation page offers to send."""
    if not isinstance(value, list) or not all(isinstance(p, str) and p.strip() for p in value):
        raise ValidationError("Starter prompts must be a list of non-empty strings.")
    if len(value) > MAX_STARTER_PROMPTS:
        raise ValidationError(f"At most {MAX_STARTER_PROMPTS} starter prompts.")
    if any(len(p) > MAX_STARTER_PROMPT_CHARS for p in value):
        raise ValidationError(f"A starter prompt has at most {MAX_STARTER_PROMPT_CHARS} characters.")


STARTER_PROMPTS_HELP = 'Offered on the new-conversation page, e.g. ["What time is it in Tokyo?"].'

agent_name_validator = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
    "Use letters, digits and underscores, starting with a letter (AutoGen agent names are identifiers).",
)


class ModelConfig(models.Model):
    """A language model Lodestone can talk to, turned into an AutoGen ChatCompletionClient."""

    class Provider(models.TextChoices):
        # The model itself is the config's ``model``, or LODESTONE_LOCAL_MODEL when that is empty.
        LOCAL = "local", "Local (llama.cpp)"
        OPENAI = "openai", "OpenAI"
        OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible endpoint"
        REPLAY = "replay", "Replay (scripted responses)"

    name = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=32, choices=Provider.choices, default=Provider.LOCAL)
    model = models.CharField(max_length=200, blank=True, help_text="Model name at the provider.")
    base_url = models.URLField(blank=True, help_text="For OpenAI-compatible endpoints.")
    api_key_encrypted = models.TextField(blank=True, editable=False)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Provider options, e.g. temperature, max_tokens; for replay: responses, chunk_delay.",
    )
    prompt_price_per_million = models.DecimalField(
        max_digits=12, decimal_places=4, default=0, help_text="Cost of a million prompt tokens (your currency)."
    )
    completion_price_per_million = models.DecimalField(
        max_digits=12, decimal_places=4, default=0, help_text="Cost of a million completion tokens."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"

    @property
    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    def set_api_key(self, plaintext: str) -> None:
        self.api_key_encrypted = crypto.encrypt(plaintext)

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    def clean(self) -> None:
        if not isinstance(self.options, dict):
            raise ValidationError({"options": "Options must be a JSON object."})
        if self.provider == self.Provider.OPENAI_COMPATIBLE and not self.base_url:
            raise ValidationError({"base_url": "An OpenAI-compatible endpoint needs a base URL."})
        if self.provider in {self.Provider.OPENAI, self.Provider.OPENAI_COMPATIBLE} and not self.model:
            raise ValidationError({"model": "Name the model to use at this provider."})


class Agent(models.Model):
    """A conversable agent: what it is for, how it speaks, which model and tools it uses."""

    slug = models.CharField(max_length=64, unique=True, validators=[agent_name_validator])
    name = models.CharField(max_length=100)
    description = models.TextField(help_text="What this agent does; teams use it to pick speakers.")
    system_message = models.TextField(blank=True)
    capabilities = models.JSONField(default=list, blank=True, help_text='Short tags, e.g. ["planning"].')
    model_config = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="agents")
    tool_names = models.JSONField(default=list, blank=True, help_text="Builtin tools this agent may call.")
    memory_enabled = models.BooleanField(
        default=False, help_text="Recall similar past experiences into context, and store each run's outcome."
    )
    handoffs = models.JSONField(
        default=list, blank=True, help_text='Swarm teams: slugs of agents (or "user") this agent may hand off to.'
    )
    preset = models.CharField(max_length=32, blank=True, help_text="The preset this agent was created from, if any.")
    starter_prompts = models.JSONField(
        default=list, blank=True, validators=[validate_starter_prompts], help_text=STARTER_PROMPTS_HELP
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.capabilities, list) or not all(isinstance(c, str) for c in self.capabilities):
            raise ValidationError({"capabilities": "Capabilities must be a list of strings."})
        if not isinstance(self.tool_names, list) or not all(isinstance(t, str) for t in self.tool_names):
            raise ValidationError({"tool_names": "Tools must be a list of tool names."})
        from tools.registry import unknown_tool_names

        unknown = unknown_tool_names(self.tool_names)
        if unknown:
            raise ValidationError({"tool_names": f"Unknown tools: {', '.join(unknown)}."})


class Team(models.Model):
    """Agents that answer together, with the conditions that end their turn."""

    class Kind(models.TextChoices):
        SINGLE = "single", "Single agent"
        ROUND_ROBIN = "round_robin", "Round robin"
        SELECTOR = "selector", "Selector"
        MAGENTIC_ONE = "magentic_one", "Magentic-One"
        SWARM = "swarm", "Swarm (handoffs)"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.ROUND_ROBIN)
    max_messages = models.PositiveIntegerField(
        null=True, blank=True, help_text="Stop after this many messages (the user's task counts as one)."
    )
    stop_word = models.CharField(max_length=64, blank=True, help_text="Stop when a message mentions this text.")
    token_budget = models.PositiveIntegerField(null=True, blank=True, help_text="Stop after this many tokens.")
    timeout_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="Stop after this many seconds.")
    stop_on_handoff_to_user = models.BooleanField(default=False, help_text="Stop when an agent hands off to the user.")
    selector_prompt = models.TextField(
        blank=True, help_text="Selector teams: the prompt the model picks speakers with."
    )
    allow_repeated_speaker = models.BooleanField(default=False, help_text="Selector teams: may one agent speak twice.")
    max_stalls = models.PositiveIntegerField(null=True, blank=True, help_text="Magentic-One: stalls before replanning.")
    orchestrator_model = models.ForeignKey(
        ModelConfig,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orchestrated_teams",
        help_text="Selector and Magentic-One teams: the model that picks speakers or plans.",
    )
    starter_prompts = models.JSONField(
        default=list, blank=True, validators=[validate_starter_prompts], help_text=STARTER_PROMPTS_HELP
    )
    participants: models.ManyToManyField[Agent, TeamMember] = models.ManyToManyField(
        Agent, through="TeamMember", related_name="teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_messages__isnull=False)
                | ~models.Q(stop_word="")
                | models.Q(token_budget__isnull=False)
                | models.Q(timeout_seconds__isnull=False)
                | models.Q(stop_on_handoff_to_user=True)
                | models.Q(kind="magentic_one"),
                name="team_has_termination",
                violation_error_message="A team needs a termination: max messages, stop word, token budget, "
                "timeout or handoff to the user.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def termination_summary(self) -> dict[str, Any]:
        return {"max_messages": self.max_messages, "stop_word": self.stop_word or None}


class TeamMember(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="members")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="memberships")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "agent"], name="team_member_unique_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.team} #{self.position}: {self.agent}"
