"""The demo seed: what it creates on the configured local model, that re-running it updates in place
and never duplicates, and that the demo teams build (and an assistant with tools runs) on a model
that cannot call tools."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from django.core.management import call_command

from agents import factory
from agents import selectors as agent_selectors
from agents import services as agent_services
from agents.models import Agent, ModelConfig, Team
from tools.code_executor import CODE_EXECUTOR_PRESET
from tools.models import ToolGrant

pytestmark = pytest.mark.django_db

DEMO_AGENTS = ["assistant", "critic", "researcher", "writer", "code_coder", "code_executor"]


def grants(slug: str) -> set[str]:
    return set(
        ToolGrant.objects.filter(agent__slug=slug, status=ToolGrant.Status.ACTIVE).values_list("tool__name", flat=True)
    )


def members(slug: str) -> list[str]:
    return [m.agent.slug for m in Team.objects.get(slug=slug).members.order_by("position")]


def test_the_demo_on_the_default_local_model(settings: Any) -> None:
    settings.LODESTONE_LOCAL_MODEL = "smollm2-135m"
    seeded = agent_services.demo_seed()

    config = ModelConfig.objects.get()
    # Named after the catalogue entry of the configured model; empty ``model`` runs the setting's model.
    assert (config.name, config.provider, config.model) == ("Local SmolLM2-135M-Instruct", "local", "")
    assert config.options["n_ctx"] == 4096 and config.options["context_messages"] == 6
    assert seeded["tool_calling"] is False and seeded["team"].slug == "duo"
    assert sorted(a.slug for a in seeded["agents"]) == sorted(DEMO_AGENTS)
    assert set(Agent.objects.values_list("model_config_id", flat=True)) == {config.pk}

    assistant = Agent.objects.get(slug="assistant")
    assert assistant.memory_enabled
    assert grants("assistant") == {"calculator", "current_time", "memory_search", "memory_store", "python_exec"}
    # On a model without tool calling its prompt does not talk about tools it will not get.
    assert "calculator" not in assistant.system_message
    assert "TERMINATE" not in " ".join(Agent.objects.values_list("system_message", flat=True))
    prompts = assistant.starter_prompts
    assert "What is 4817 \N{MULTIPLICATION SIGN} 2293?" in prompts
    assert prompts.index("My favourite colour is teal.") < prompts.index("What is my favourite colour?")

    teams = {t.slug: t for t in Team.objects.all()}
    assert {slug: t.kind for slug, t in teams.items()} == {
        "duo": Team.Kind.ROUND_ROBIN,
        "research-desk": Team.Kind.SELECTOR,
        "code-pair": Team.Kind.ROUND_ROBIN,
        "magentic": Team.Kind.MAGENTIC_ONE,
    }
    assert members("duo") == ["assistant", "critic"]
    assert members("research-desk") == ["researcher", "writer", "critic"]
    assert members("code-pair") == ["code_coder", "code_executor"]
    assert members("magentic") == ["researcher", "code_coder", "code_executor"]
    assert Agent.objects.get(slug="code_executor").preset == CODE_EXECUTOR_PRESET
    assert "Write and run Python that prints the first 10 primes" in teams["code-pair"].starter_prompts
    # The selector prompt fills in what AutoGen's does, and nothing else.
    assert teams["research-desk"].selector_prompt.format(roles="R", participants="P", history="H")
    for row in [*teams.values(), *Agent.objects.all()]:
        row.full_clean()  # starter prompts and the rest are valid as stored


def test_seeding_again_updates_in_place_and_never_duplicates(settings: Any) -> None:
    settings.LODESTONE_LOCAL_MODEL = "smollm2-135m"
    agent_services.demo_seed()
    ids = dict(Agent.objects.values_list("slug", "pk"))
    team_ids = dict(Team.objects.values_list("slug", "pk"))
    # An older version of the demo, or an edit: a prompt, a grant, the members, the starter prompts.
    Agent.objects.filter(slug="critic").update(system_message="Say TERMINATE.")
    ToolGrant.objects.filter(agent__slug="assistant", tool__name="calculator").delete()
    duo = Team.objects.get(slug="duo")
    duo.members.filter(agent__slug="critic").delete()
    Team.objects.filter(slug="duo").update(starter_prompts=[])

    agent_services.demo_seed()

    assert dict(Agent.objects.values_list("slug", "pk")) == ids
    assert dict(Team.objects.values_list("slug", "pk")) == team_ids
    assert ModelConfig.objects.count() == 1
    assert "TERMINATE" not in Agent.objects.get(slug="critic").system_message
    assert "calculator" in grants("assistant")
    assert members("duo") == ["assistant", "critic"]
    assert Team.objects.get(slug="duo").starter_prompts
    assert ToolGrant.objects.filter(agent__slug="assistant").count() == 5


def test_the_config_follows_the_setting_and_the_old_smollm2_name(settings: Any) -> None:
    # What earlier versions created: a config called after SmolLM2 whatever the setting said.
    old = ModelConfig.objects.create(
        name="Local SmolLM2-135M", provider="local", options={"max_tokens": 200, "temperature": 0.6}
    )
    settings.LODESTONE_LOCAL_MODEL = "qwen2.5-coder-0.5b"
    seeded = agent_services.demo_seed()

    config = ModelConfig.objects.get()
    assert config.pk == old.pk and config.name == "Local Qwen2.5-Coder-0.5B-Instruct"
    # The options it had are kept; the ones it lacked are added.
    assert config.options["temperature"] == 0.6 and config.options["n_ctx"] == 4096
    assert seeded["tool_calling"] is True
    assert "calculator" in Agent.objects.get(slug="assistant").system_message

    settings.LODESTONE_LOCAL_MODEL = "smollm2-135m"
    agent_services.demo_seed()
    assert list(ModelConfig.objects.values_list("pk", "name")) == [(old.pk, "Local SmolLM2-135M-Instruct")]
    assert "calculator" not in Agent.objects.get(slug="assistant").system_message


def test_presets_use_the_same_local_config(settings: Any) -> None:
    from agents.presets import presets_seed

    settings.LODESTONE_LOCAL_MODEL = "smollm2-135m"
    agent_services.demo_seed()
    presets_seed()
    assert ModelConfig.objects.count() == 1
    assert set(Agent.objects.values_list("model_config__name", flat=True)) == {"Local SmolLM2-135M-Instruct"}


def test_the_command_says_when_the_model_cannot_call_tools(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.LODESTONE_LOCAL_MODEL = "smollm2-135m"
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "Local SmolLM2-135M-Instruct" in text
    for slug in ("duo", "research-desk", "code-pair", "magentic"):
        assert f"team  {slug}:" in text
    assert "smollm2-135m cannot call tools" in text and "qwen2.5-coder-0.5b" in text


# --- Building the demo on the bundled SmolLM2 (no tool calling): nothing raises.


def test_every_demo_team_builds_on_a_model_without_tool_calling(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.LODESTONE_LOCAL_MODEL = "smollm2-135m"
    seeded = agent_services.demo_seed()
    config = seeded["model_config"]
    assert factory.model_calls_tools(config) is False

    with caplog.at_level(logging.WARNING, logger="agents.factory"):
        for team in seeded["teams"]:
            built = factory.build_team(factory.spec_for_team(team))
            assert len(built._participants) == team.members.count()
        assistant = factory.build_agent(Agent.objects.get(slug="assistant"))
    # The tools are left out, not refused by AutoGen, and the log says which and why.
    assert isinstance(assistant, AssistantAgent) and assistant._tools == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "agents.factory"]
    assert any(
        m.startswith("assistant: its tools (") and "calculator" in m and "cannot call tools" in m for m in warnings
    )
    pair = factory.build_team(factory.spec_for_team(Team.objects.get(slug="code-pair")))
    assert isinstance(pair._participants[1], CodeExecutorAgent)

    # What the new-conversation page shows for the assistant and for the duo.
    [note] = agent_selectors.tools_not_offered_notes([Agent.objects.get(slug="assistant")])
    assert note.startswith("Assistant: its tools (") and "qwen2.5-coder" in note
    assert len(agent_selectors.tools_not_offered_notes(agent_selectors.team_agents(seeded["team"]))) == 1


def test_a_model_that_calls_tools_gets_them_and_no_note() -> None:
    from tests import factories

    model = factories.replay_model(["Hi."])
    helper = factories.agent(model, "helper", tool_names=["calculator", "current_time"])
    built = factory.build_agent(helper)
    assert sorted(t.name for t in built._tools) == ["calculator", "current_time"]
    assert agent_selectors.tools_not_offered_notes([helper]) == []
