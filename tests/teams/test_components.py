"""AutoGen component JSON: export -> import round trips, an AutoGen Studio team file, hostile files."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from agents import services as agent_services
from agents.components import ImportRejected, dump_team, import_file, load_component, team_fingerprint
from agents.models import Agent, ModelConfig, Team
from tests import factories

pytestmark = pytest.mark.django_db

# Written after AutoGen's documented component format (Component.dump_component(), as AutoGen Studio
# exports a team): a round-robin team of two OpenAI-backed assistants, stopping on "TERMINATE" or
# after 10 messages.
STUDIO_TEAM: dict[str, Any] = {
    "provider": "autogen_agentchat.teams.RoundRobinGroupChat",
    "component_type": "team",
    "version": 1,
    "component_version": 1,
    "description": "A team that writes and reviews.",
    "label": "Writer and reviewer",
    "config": {
        "participants": [
            {
                "provider": "autogen_agentchat.agents.AssistantAgent",
                "component_type": "agent",
                "version": 1,
                "component_version": 1,
                "description": "An agent that writes.",
                "label": "writer",
                "config": {
                    "name": "writer",
                    "model_client": {
                        "provider": "autogen_ext.models.openai.OpenAIChatCompletionClient",
                        "component_type": "model",
                        "version": 1,
                        "component_version": 1,
                        "description": "Chat completion client for OpenAI hosted models.",
                        "label": "OpenAIChatCompletionClient",
                        "config": {"model": "gpt-4o-mini"},
                    },
                    "workbench": [
                        {
                            "provider": "autogen_core.tools.StaticWorkbench",
                            "component_type": "workbench",
                            "version": 1,
                            "component_version": 1,
                            "config": {"tools": []},
                        }
                    ],
                    "model_context": {
                        "provider": "autogen_core.model_context.UnboundedChatCompletionContext",
                        "component_type": "chat_completion_context",
                        "version": 1,
                        "component_version": 1,
                        "config": {},
                    },
                    "description": "An agent that writes.",
                    "system_message": "You write short poems.",
                    "model_client_stream": False,
                    "reflect_on_tool_use": False,
                    "tool_call_summary_format": "{result}",
                    "metadata": {},
                },
            },
            {
                "provider": "autogen_agentchat.agents.AssistantAgent",
                "component_type": "agent",
                "version": 1,
                "component_version": 1,
                "description": "An agent that reviews.",
                "label": "reviewer",
                "config": {
                    "name": "reviewer",
                    "model_client": {
                        "provider": "autogen_ext.models.openai.OpenAIChatCompletionClient",
                        "component_type": "model",
                        "version": 1,
                        "component_version": 1,
                        "label": "OpenAIChatCompletionClient",
                        "config": {"model": "gpt-4o-mini"},
                    },
                    "tools": [],
                    "handoffs": [],
                    "description": "An agent that reviews.",
                    "system_message": "Review the poem. Say TERMINATE when it is good.",
                    "model_client_stream": False,
                    "reflect_on_tool_use": False,
                    "tool_call_summary_format": "{result}",
                },
            },
        ],
        "termination_condition": {
            "provider": "autogen_agentchat.base.OrTerminationCondition",
            "component_type": "termination",
            "version": 1,
            "component_version": 1,
            "label": "OrTerminationCondition",
            "config": {
                "conditions": [
                    {
                        "provider": "autogen_agentchat.conditions.TextMentionTermination",
                        "component_type": "termination",
                        "version": 1,
                        "component_version": 1,
                        "config": {"text": "TERMINATE"},
                    },
                    {
                        "provider": "autogen_agentchat.conditions.MaxMessageTermination",
                        "component_type": "termination",
                        "version": 1,
                        "component_version": 1,
                        "config": {"max_messages": 10, "include_agent_event": False},
                    },
                ]
            },
        },
        "max_turns": None,
    },
}


def test_autogen_studio_team_file_becomes_rows() -> None:
    result = import_file(json.dumps(STUDIO_TEAM))
    team = result.teams[0]
    assert team.kind == Team.Kind.ROUND_ROBIN and team.name == "Writer and reviewer"
    assert team.max_messages == 10 and team.stop_word == "TERMINATE"
    writer, reviewer = [m.agent for m in team.members.order_by("position")]
    assert (writer.slug, reviewer.slug) == ("writer", "reviewer")
    assert writer.system_message == "You write short poems."
    assert writer.model_config == reviewer.model_config  # one model config for the same client
    assert writer.model_config.provider == ModelConfig.Provider.OPENAI and writer.model_config.model == "gpt-4o-mini"


def make_teams() -> list[Team]:
    model = factories.replay_model(["a", "b"])
    orchestrator = factories.replay_model(["c"])
    a = factories.agent(model, "alpha", capabilities=["x"], handoffs=["beta", "user"])
    b = factories.agent(model, "beta", handoffs=["alpha"])
    proxy = factories.agent(model, "human", preset="user_proxy")
    create = agent_services.team_create
    return [
        create(slug="t-single", name="Single", kind=Team.Kind.SINGLE, agents=[a], max_messages=3),
        create(
            slug="t-rr", name="RR", kind=Team.Kind.ROUND_ROBIN, agents=[a, b, proxy], stop_word="DONE", token_budget=500
        ),
        create(
            slug="t-sel",
            name="Sel",
            kind=Team.Kind.SELECTOR,
            agents=[a, b],
            timeout_seconds=30,
            max_messages=4,
            selector_prompt="Pick from {participants}: {roles} {history}",
            allow_repeated_speaker=True,
            orchestrator_model=orchestrator,
        ),
        create(
            slug="t-swarm",
            name="Swarm",
            kind=Team.Kind.SWARM,
            agents=[a, b],
            stop_on_handoff_to_user=True,
            max_messages=9,
        ),
        create(
            slug="t-m1",
            name="M1",
            kind=Team.Kind.MAGENTIC_ONE,
            agents=[a, b],
            max_stalls=2,
            max_messages=7,
            orchestrator_model=orchestrator,
        ),
    ]


def test_every_team_kind_re_imports_to_an_equal_team() -> None:
    for team in make_teams():
        exported = json.dumps(dump_team(team))
        again = import_file(exported).teams[0]
        assert again.pk != team.pk and again.slug != team.slug
        assert team_fingerprint(again) == team_fingerprint(team), team.kind


def test_export_and_import_commands(tmp_path: Path) -> None:
    make_teams()
    out = StringIO()
    call_command("export_components", stdout=out)
    gallery = json.loads(out.getvalue())
    assert len(gallery["components"]["teams"]) == 5
    path = tmp_path / "gallery.json"
    path.write_text(out.getvalue())
    before = Team.objects.count()
    call_command("import_components", str(path), stdout=StringIO())
    assert Team.objects.count() == before + 5


def rejected(data: Any) -> list[str]:
    counts = (Team.objects.count(), Agent.objects.count(), ModelConfig.objects.count())
    with pytest.raises(ImportRejected) as info:
        import_file(data if isinstance(data, str | bytes) else json.dumps(data))
    assert (Team.objects.count(), Agent.objects.count(), ModelConfig.objects.count()) == counts
    return info.value.problems


def test_hostile_files_are_refused_and_nothing_is_imported() -> None:
    unknown = json.loads(json.dumps(STUDIO_TEAM))
    unknown["config"]["participants"][1]["config"]["model_client"]["provider"] = "evil.module.Client"
    assert any("evil.module.Client" in p for p in rejected(unknown))

    with_tool = json.loads(json.dumps(STUDIO_TEAM))
    with_tool["config"]["participants"][0]["config"]["workbench"][0]["config"]["tools"] = [
        {
            "provider": "autogen_core.tools.FunctionTool",
            "component_type": "tool",
            "label": "pwn",
            "config": {"source_code": "import os\nos.system('touch /tmp/pwned')", "name": "pwn", "global_imports": []},
        }
    ]
    assert any("pwn" in p and "never run" in p for p in rejected(with_tool))
    assert not Path("/tmp/pwned").exists()

    deep: Any = {"provider": "x"}
    for _ in range(100):
        deep = {"config": deep}
    assert "nests deeper" in rejected(deep)[0]
    assert "nests deeper" in rejected("[" * 100_000 + "]" * 100_000)[0]
    assert "bytes" in rejected(" " * 1_000_001)[0]
    assert "Not valid JSON" in rejected("{nope")[0]
    assert rejected({"hello": "world"})


def test_command_reports_unsupported_by_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    bad = json.loads(json.dumps(STUDIO_TEAM))
    bad["provider"] = "autogen_agentchat.teams.GraphFlow"
    path.write_text(json.dumps(bad))
    with pytest.raises(CommandError, match="GraphFlow"):
        call_command("import_components", str(path), stdout=StringIO())
    assert not Team.objects.exists()


def test_load_component_accepts_a_list() -> None:
    result = load_component([STUDIO_TEAM])
    assert [t.name for t in result.teams] == ["Writer and reviewer"]


def test_api_export_then_import_and_refusals() -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    team = make_teams()[2]
    user = factories.user()
    client = APIClient()
    client.force_authenticate(user)
    exported = client.get(f"/api/teams/{team.slug}/export/")
    assert exported.status_code == 200 and exported.json()["provider"] == "autogen_agentchat.teams.SelectorGroupChat"
    upload = SimpleUploadedFile("team.json", exported.content, content_type="application/json")
    assert client.post("/api/components/import/", {"file": upload}, format="multipart").status_code == 403

    from agents.permissions import COMPONENT_IMPORT_PERMISSIONS, permissions_named

    user.user_permissions.add(*permissions_named(COMPONENT_IMPORT_PERMISSIONS))
    user = type(user).objects.get(pk=user.pk)  # permissions are cached on the instance
    client.force_authenticate(user)
    upload = SimpleUploadedFile("team.json", exported.content, content_type="application/json")
    created = client.post("/api/components/import/", {"file": upload}, format="multipart")
    assert created.status_code == 201, created.content
    again = Team.objects.get(slug=created.json()["teams"][0])
    assert team_fingerprint(again) == team_fingerprint(team)

    bad = SimpleUploadedFile("bad.json", b'{"provider": "nope.Team", "component_type": "team", "config": {}}')
    refused = client.post("/api/components/import/", {"file": bad}, format="multipart")
    assert refused.status_code == 400 and "nope.Team" in refused.json()["problems"][0]
    assert client.get("/api/teams/missing/export/").status_code == 404


def test_function_tool_source_becomes_a_pending_tool_never_run(tmp_path: Path) -> None:
    from tools.models import Tool, ToolGrant

    marker = tmp_path / "ran"
    source = (
        "def shout(text: str) -> str:\n"
        '    """Shout the text."""\n'
        f"    open({str(marker)!r}, 'w').write('x')\n"
        "    return text.upper()\n"
    )
    team = json.loads(json.dumps(STUDIO_TEAM))
    team["config"]["participants"][0]["config"]["workbench"][0]["config"]["tools"] = [
        {
            "provider": "autogen_core.tools.FunctionTool",
            "component_type": "tool",
            "version": 1,
            "component_version": 1,
            "label": "shout",
            "config": {"source_code": source, "name": "shout", "description": "Shout.", "global_imports": []},
        }
    ]
    result = import_file(json.dumps(team))
    tool = Tool.objects.get(name="shout")
    assert tool.status == Tool.Status.PENDING and tool.kind == Tool.Kind.PYTHON
    assert [t.name for t in result.tools] == ["shout"]
    writer = result.teams[0].members.get(position=0).agent
    assert ToolGrant.objects.filter(agent=writer, tool=tool).exists()
    assert not marker.exists()  # parsed, never executed
    # Exported again, the tool travels as a FunctionTool and re-imports as the same tool.
    again = import_file(json.dumps(dump_team(result.teams[0])))
    assert Tool.objects.filter(name="shout").count() == 1 and again.tools == []
    assert team_fingerprint(again.teams[0]) == team_fingerprint(result.teams[0])


def test_builtin_tools_round_trip_by_name_and_their_code_is_never_imported() -> None:
    from tools.models import Tool, ToolGrant

    model = factories.replay_model(["x"])
    solo = factories.agent(model, "calc", tool_names=["calculator"])
    team = agent_services.team_create(
        slug="calc-team", name="Calc", kind=Team.Kind.SINGLE, agents=[solo], max_messages=2
    )
    exported = dump_team(team)

    tool = exported["config"]["participants"][0]["config"]["tools"][0]
    assert tool["provider"] == "autogen_core.tools.FunctionTool"
    assert tool["config"]["name"] == "calculator"
    # The function's own source, for reference outside Lodestone, without our registering decorator.
    assert tool["config"]["source_code"].startswith("def calculate(")

    # Whatever code a file carries under a builtin's name is ignored: the builtin itself is granted.
    tool["config"]["source_code"] = "def calculate(expression: str) -> str:\n    raise SystemExit('never run')\n"
    python_tools = Tool.objects.filter(kind=Tool.Kind.PYTHON).count()
    again = import_file(json.dumps(exported)).teams[0]
    agent = again.members.get().agent
    granted = ToolGrant.objects.filter(agent=agent).select_related("tool").get()
    assert (granted.tool.name, granted.tool.kind) == ("calculator", Tool.Kind.BUILTIN)
    assert Tool.objects.filter(kind=Tool.Kind.PYTHON).count() == python_tools
    assert team_fingerprint(again) == team_fingerprint(team)
