"""Teams, agents, model clients and termination conditions as AutoGen component JSON — the format of
``Component.dump_component()`` / ``load_component()`` and of AutoGen Studio's team and gallery
exports (``{"provider", "component_type", "version", "component_version", "label",
"description", "config"}``).

Import never instantiates AutoGen classes from the file and never runs code: it reads the JSON,
checks every component against the providers we support, and only then creates rows, all in one
transaction. Anything unsupported (an unknown provider, a tool — tools carry source code) rejects
the whole file with the names of what was refused.

Whoever imports needs ``agents.permissions.COMPONENT_IMPORT_PERMISSIONS`` (the adapters check); each
created row gets an audit-log entry under the importing user, in the import's transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction

from agents.factory import USER_PROXY_PRESET
from agents.models import Agent, ModelConfig, Team
from config.common.audit import ADDITION, audit_record

MAX_BYTES = 1_000_000
MAX_DEPTH = 24

P_ROUND_ROBIN = "autogen_agentchat.teams.RoundRobinGroupChat"
P_SELECTOR = "autogen_agentchat.teams.SelectorGroupChat"
P_MAGENTIC = "autogen_agentchat.teams.MagenticOneGroupChat"
P_SWARM = "autogen_agentchat.teams.Swarm"
P_ASSISTANT = "autogen_agentchat.agents.AssistantAgent"
P_USER_PROXY = "autogen_agentchat.agents.UserProxyAgent"
P_OPENAI = "autogen_ext.models.openai.OpenAIChatCompletionClient"
P_REPLAY = "autogen_ext.models.replay.ReplayChatCompletionClient"
P_LOCAL = "agents.providers.local.LocalChatCompletionClient"
P_FUNCTION_TOOL = "autogen_core.tools.FunctionTool"
P_OR = "autogen_agentchat.base.OrTerminationCondition"
P_MAX = "autogen_agentchat.conditions.MaxMessageTermination"
P_TEXT = "autogen_agentchat.conditions.TextMentionTermination"
P_TOKENS = "autogen_agentchat.conditions.TokenUsageTermination"
P_TIMEOUT = "autogen_agentchat.conditions.TimeoutTermination"
P_HANDOFF = "autogen_agentchat.conditions.HandoffTermination"
# AutoGen's own aliases (autogen_core WELL_KNOWN_PROVIDERS) that we accept.
ALIASES = {"openai_chat_completion_client": P_OPENAI, "OpenAIChatCompletionClient": P_OPENAI}

TEAM_KINDS = {
    P_ROUND_ROBIN: Team.Kind.ROUND_ROBIN,
    P_SELECTOR: Team.Kind.SELECTOR,
    P_MAGENTIC: Team.Kind.MAGENTIC_ONE,
    P_SWARM: Team.Kind.SWARM,
}
KIND_PROVIDERS: dict[str, str] = {kind: provider for provider, kind in TEAM_KINDS.items()}
KIND_PROVIDERS[Team.Kind.SINGLE] = P_ROUND_ROBIN


class ImportRejected(Exception):
    """The file cannot be imported; nothing was."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class ImportResult:
    teams: list[Team] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)
    model_configs: list[ModelConfig] = field(default_factory=list)
    tools: list[Any] = field(default_factory=list)  # pending Python tools, awaiting approval

    def summary(self) -> dict[str, list[str]]:
        return {
            "pending_tools": [t.name for t in self.tools],
            "teams": [t.slug for t in self.teams],
            "agents": [a.slug for a in self.agents],
            "model_configs": [m.name for m in self.model_configs],
        }


def _component(
    provider: str, component_type: str, config: dict[str, Any], label: str = "", description: str = ""
) -> dict[str, Any]:
    return {
        "provider": provider,
        "component_type": component_type,
        "version": 1,
        "component_version": 1,
        "description": description or None,
        "label": label or provider.rsplit(".", 1)[-1],
        "config": config,
    }


# --- export --------------------------------------------------------------------------------------


def dump_model_client(config: ModelConfig) -> dict[str, Any]:
    options = dict(config.options or {})
    if config.provider == ModelConfig.Provider.REPLAY:
        body: dict[str, Any] = {"chat_completions": options.pop("responses", [])}
        if options:
            body["lodestone_options"] = options
        return _component(P_REPLAY, "model", body, label=config.name)
    if config.provider == ModelConfig.Provider.LOCAL:
        return _component(P_LOCAL, "model", {"model": config.model, **options}, label=config.name)
    body = {"model": config.model, **options}
    if config.base_url:
        body["base_url"] = config.base_url
    # The API key is never exported.
    return _component(P_OPENAI, "model", body, label=config.name)


def dump_termination(team: Team) -> dict[str, Any] | None:
    conditions: list[dict[str, Any]] = []
    if team.max_messages and team.kind != Team.Kind.MAGENTIC_ONE:
        conditions.append(
            _component(P_MAX, "termination", {"max_messages": team.max_messages, "include_agent_event": False})
        )
    if team.stop_word:
        conditions.append(_component(P_TEXT, "termination", {"text": team.stop_word}))
    if team.token_budget:
        conditions.append(
            _component(
                P_TOKENS,
                "termination",
                {"max_total_token": team.token_budget, "max_prompt_token": None, "max_completion_token": None},
            )
        )
    if team.timeout_seconds:
        conditions.append(_component(P_TIMEOUT, "termination", {"timeout_seconds": float(team.timeout_seconds)}))
    if team.stop_on_handoff_to_user:
        conditions.append(_component(P_HANDOFF, "termination", {"target": "user"}))
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]
    return _component(P_OR, "termination", {"conditions": conditions})


def _builtin_source(name: str) -> str:
    """A builtin's function source, without its registering decorator. For reference only: it may
    rely on Lodestone's modules, and a Lodestone import maps the tool back to the builtin by name."""
    import inspect
    import textwrap

    from tools.registry import builtin_tools

    builtin = builtin_tools().get(name)
    if builtin is None:
        return ""
    try:
        lines = textwrap.dedent(inspect.getsource(builtin.func)).splitlines()
    except (OSError, TypeError):
        return ""
    while lines and lines[0].lstrip().startswith("@"):
        # A decorator may span several lines: drop through the line that closes it.
        head = lines.pop(0)
        depth = head.count("(") - head.count(")")
        while depth > 0 and lines:
            nxt = lines.pop(0)
            depth += nxt.count("(") - nxt.count(")")
    return "\n".join(lines) + "\n"


def _dump_tools(agent: Agent) -> list[dict[str, Any]]:
    """Granted Python and builtin tools as FunctionTools (builtins by name, their source for reference)."""
    from tools.models import Tool, ToolGrant

    grants = ToolGrant.objects.filter(agent=agent, tool__kind__in=[Tool.Kind.PYTHON, Tool.Kind.BUILTIN]).select_related(
        "tool"
    )
    return [
        _component(
            P_FUNCTION_TOOL,
            "tool",
            {
                "source_code": g.tool.source if g.tool.kind == Tool.Kind.PYTHON else _builtin_source(g.tool.name),
                "name": g.tool.name,
                "description": g.tool.description,
                "global_imports": [],
                "has_cancellation_support": False,
            },
            label=g.tool.name,
            description=g.tool.description,
        )
        for g in grants.order_by("tool__name")
    ]


def dump_agent(agent: Agent) -> dict[str, Any]:
    if agent.preset == USER_PROXY_PRESET:
        return _component(
            P_USER_PROXY, "agent", {"name": agent.slug, "description": agent.description}, label=agent.name
        )
    config: dict[str, Any] = {
        "name": agent.slug,
        "model_client": dump_model_client(agent.model_config),
        "tools": _dump_tools(agent),
        "handoffs": list(agent.handoffs or []),
        "model_context": None,
        "description": agent.description,
        "system_message": agent.system_message or None,
        "model_client_stream": True,
        "reflect_on_tool_use": False,
        "tool_call_summary_format": "{result}",
        # Lodestone's own fields, ignored by AutoGen.
        "metadata": {
            "capabilities": list(agent.capabilities or []),
            "preset": agent.preset,
            "memory_enabled": agent.memory_enabled,
        },
    }
    return _component(P_ASSISTANT, "agent", config, label=agent.name, description=agent.description)


def dump_team(team: Team) -> dict[str, Any]:
    agents = [m.agent for m in team.members.select_related("agent__model_config").order_by("position", "id")]
    config: dict[str, Any] = {
        "participants": [dump_agent(a) for a in agents],
        "termination_condition": dump_termination(team),
    }
    orchestrator = team.orchestrator_model or (agents[0].model_config if agents else None)
    if team.kind == Team.Kind.SINGLE:
        config["max_turns"] = 1
    if team.kind == Team.Kind.SELECTOR and orchestrator is not None:
        config.update(
            model_client=dump_model_client(orchestrator),
            selector_prompt=team.selector_prompt or None,
            allow_repeated_speaker=team.allow_repeated_speaker,
            max_selector_attempts=3,
        )
    if team.kind == Team.Kind.MAGENTIC_ONE and orchestrator is not None:
        config.update(
            model_client=dump_model_client(orchestrator),
            max_stalls=team.max_stalls or 3,
            max_turns=team.max_messages or 20,
        )
    config["metadata"] = {"slug": team.slug, "kind": team.kind}
    return _component(KIND_PROVIDERS[team.kind], "team", config, label=team.name, description=team.description)


def dump_component(obj: Team | Agent | ModelConfig) -> dict[str, Any]:
    if isinstance(obj, Team):
        return dump_team(obj)
    if isinstance(obj, Agent):
        return dump_agent(obj)
    return dump_model_client(obj)


def dump_gallery(teams: list[Team], name: str = "Lodestone export") -> dict[str, Any]:
    """All given teams as an AutoGen Studio gallery (``components.teams``)."""
    return {"name": name, "metadata": {"source": "lodestone"}, "components": {"teams": [dump_team(t) for t in teams]}}


# --- import --------------------------------------------------------------------------------------


def parse(raw: bytes | str) -> Any:
    if len(raw) > MAX_BYTES:
        raise ImportRejected([f"The file is {len(raw)} bytes; the limit is {MAX_BYTES}."])
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ImportRejected([f"The file nests deeper than {MAX_DEPTH} levels."]) from None
    except ValueError as exc:
        raise ImportRejected([f"Not valid JSON: {exc}."]) from None
    if _depth(data) > MAX_DEPTH:
        raise ImportRejected([f"The file nests deeper than {MAX_DEPTH} levels."])
    return data


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()], default=level + 1)
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value], default=level + 1)
    return level


@dataclass
class _Plan:
    """Validated rows to create, built before anything is written."""

    problems: list[str] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> fields
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)  # slug -> fields (model key)
    teams: list[dict[str, Any]] = field(default_factory=list)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> pending Python tool fields


def _provider(component: Any) -> str:
    provider = component.get("provider", "") if isinstance(component, dict) else ""
    return ALIASES.get(provider, provider)


def _config(component: dict[str, Any]) -> dict[str, Any]:
    config = component.get("config")
    return config if isinstance(config, dict) else {}


def _name_of(component: Any) -> str:
    if not isinstance(component, dict):
        return "?"
    return str(component.get("label") or _config(component).get("name") or component.get("provider") or "?")


def _plan_model(plan: _Plan, component: Any) -> str | None:
    provider = _provider(component)
    config = _config(component)
    label = str(component.get("label") or config.get("model") or provider.rsplit(".", 1)[-1])[:100]
    if provider == P_REPLAY:
        options = dict(config.get("lodestone_options") or {})
        completions = config.get("chat_completions")
        if not isinstance(completions, list) or not all(isinstance(c, str | dict) for c in completions):
            plan.problems.append(f"Model {label!r}: chat_completions must be a list.")
            return None
        fields = {
            "provider": ModelConfig.Provider.REPLAY,
            "model": "",
            "base_url": "",
            "options": {**options, "responses": completions},
        }
    elif provider == P_LOCAL:
        options = {k: v for k, v in config.items() if k != "model" and isinstance(v, int | float | str | bool)}
        fields = {
            "provider": ModelConfig.Provider.LOCAL,
            "model": str(config.get("model") or ""),
            "base_url": "",
            "options": options,
        }
    elif provider == P_OPENAI:
        model = config.get("model")
        if not isinstance(model, str) or not model:
            plan.problems.append(f"Model {label!r}: config.model is required.")
            return None
        base_url = str(config.get("base_url") or "")
        options = {
            k: config[k] for k in ("temperature", "max_tokens", "top_p") if isinstance(config.get(k), int | float)
        }
        fields = {
            "provider": ModelConfig.Provider.OPENAI_COMPATIBLE if base_url else ModelConfig.Provider.OPENAI,
            "model": model,
            "base_url": base_url,
            "options": options,
        }
        if config.get("api_key"):
            plan.problems.append(
                f"Model {label!r} carries an API key: remove it from the file and set it in Lodestone."
            )
            return None
    else:
        plan.problems.append(f"Unsupported model provider {provider or '(none)'!r} ({label!r}).")
        return None
    key = json.dumps([label, fields], sort_keys=True, default=str)
    plan.models.setdefault(key, {"name": label, **fields})
    return key


def _plan_agent(plan: _Plan, component: Any, team_model: str | None) -> str | None:
    provider = _provider(component)
    config = _config(component)
    name = str(config.get("name") or "")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
        plan.problems.append(f"Agent {_name_of(component)!r}: config.name must be an identifier.")
        return None
    label = str(component.get("label") or name)[:100]
    description = str(config.get("description") or component.get("description") or label)
    if provider == P_USER_PROXY:
        if team_model is None:
            plan.problems.append(f"User proxy {name!r} needs a team with a model client.")
            return None
        fields: dict[str, Any] = {
            "name": label,
            "description": description,
            "model": team_model,
            "preset": USER_PROXY_PRESET,
        }
    elif provider == P_ASSISTANT:
        tools = list(config.get("tools") or [])
        workbenches = config.get("workbench") or []
        for bench in workbenches if isinstance(workbenches, list) else [workbenches]:
            tools += list(_config(bench).get("tools") or []) if isinstance(bench, dict) else [bench]
        tool_names = [_plan_tool(plan, tool) for tool in tools]
        if None in tool_names:
            return None
        model = _plan_model(plan, config.get("model_client"))
        if model is None:
            return None
        meta: dict[str, Any] = config["metadata"] if isinstance(config.get("metadata"), dict) else {}
        handoffs = [h if isinstance(h, str) else h.get("target") for h in (config.get("handoffs") or [])]
        if not all(isinstance(h, str) for h in handoffs):
            plan.problems.append(f"Agent {name!r}: handoffs must be names or {{target: name}} objects.")
            return None
        fields = {
            "name": label,
            "description": description,
            "system_message": str(config.get("system_message") or ""),
            "model": model,
            "handoffs": handoffs,
            "capabilities": [str(c) for c in meta.get("capabilities", [])][:50],
            "preset": str(meta.get("preset") or "")[:32],
            "memory_enabled": bool(meta.get("memory_enabled", False)),
            "tools": tool_names,
        }
    else:
        plan.problems.append(f"Unsupported agent provider {provider or '(none)'!r} ({_name_of(component)!r}).")
        return None
    if name in plan.agents and plan.agents[name] != fields:
        plan.problems.append(f"Two different agents are named {name!r}.")
        return None
    plan.agents[name] = fields
    return name


def _tool_source(config: dict[str, Any]) -> str:
    """FunctionTool keeps the function in ``source_code`` and its imports in ``global_imports``."""
    lines = []
    for entry in config.get("global_imports") or []:
        if isinstance(entry, str):
            lines.append(f"import {entry}")
        elif isinstance(entry, dict) and isinstance(entry.get("module"), str):
            names = ", ".join(str(n) for n in entry.get("imports") or [])
            lines.append(f"from {entry['module']} import {names}" if names else f"import {entry['module']}")
    return "\n".join([*lines, str(config.get("source_code") or "")])


def _plan_tool(plan: _Plan, component: Any) -> str | None:
    """A FunctionTool becomes a pending Python tool: its source is checked (parsed, never run) and
    waits for an administrator's approval like any user-made tool."""
    provider = _provider(component)
    label = _name_of(component)
    if provider != P_FUNCTION_TOOL:
        plan.problems.append(f"Tool {label!r}: unsupported tool provider {provider or '(none)'!r}.")
        return None
    from django.core.exceptions import ValidationError

    from tools.creation import validate_python_source
    from tools.models import Tool

    builtin_name = str(_config(component).get("name") or "")
    builtin = Tool.objects.filter(name=builtin_name, kind=Tool.Kind.BUILTIN).first() if builtin_name else None
    if builtin is not None:
        # One of our builtins (as an export writes them): granted by name; the file's code is ignored.
        plan.tools[builtin.name] = {"existing": builtin.pk}
        return builtin.name
    source = _tool_source(_config(component))
    try:
        validated = validate_python_source(source)
    except ValidationError as exc:
        plan.problems.append(f"Tool {label!r}: {' '.join(exc.messages)} (its code is never run on import).")
        return None
    existing = Tool.objects.filter(name=validated.name).first()
    if existing is not None:
        if existing.kind == Tool.Kind.PYTHON and existing.source.strip() == source.strip():
            plan.tools[validated.name] = {"existing": existing.pk}  # the same tool: granted, not copied
            return validated.name
        plan.problems.append(f"A different tool named {validated.name!r} exists: rename the function.")
        return None
    if validated.name in plan.tools and plan.tools[validated.name].get("source") != source:
        plan.problems.append(f"Two different tools are named {validated.name!r}.")
        return None
    description = str(_config(component).get("description") or validated.description or validated.name)
    plan.tools[validated.name] = {
        "source": source,
        "description": description[:2000],
        "parameters": validated.parameters,
        "config": {"function": validated.name, "imports": validated.imports, "imported_from": P_FUNCTION_TOOL},
    }
    return validated.name


def _plan_termination(plan: _Plan, component: Any, into: dict[str, Any]) -> None:
    if component is None:
        return
    provider = _provider(component)
    config = _config(component)
    if provider == P_OR:
        for sub in config.get("conditions") or []:
            _plan_termination(plan, sub, into)
    elif provider == P_MAX and isinstance(config.get("max_messages"), int):
        into["max_messages"] = min(into.get("max_messages") or 10**9, config["max_messages"])
    elif provider == P_TEXT and isinstance(config.get("text"), str):
        into["stop_word"] = config["text"][:64]
    elif provider == P_TOKENS and isinstance(config.get("max_total_token"), int):
        into["token_budget"] = config["max_total_token"]
    elif provider == P_TIMEOUT and isinstance(config.get("timeout_seconds"), int | float):
        into["timeout_seconds"] = max(1, int(config["timeout_seconds"]))
    elif provider == P_HANDOFF and config.get("target") == "user":
        into["stop_on_handoff_to_user"] = True
    else:
        plan.problems.append(f"Unsupported termination condition {provider or '(none)'!r}.")


def _plan_team(plan: _Plan, component: dict[str, Any]) -> None:
    provider = _provider(component)
    config = _config(component)
    meta: dict[str, Any] = config["metadata"] if isinstance(config.get("metadata"), dict) else {}
    kind = TEAM_KINDS.get(provider)
    if kind is None:
        plan.problems.append(f"Unsupported team provider {provider or '(none)'!r} ({_name_of(component)!r}).")
        return
    if kind == Team.Kind.ROUND_ROBIN and (meta.get("kind") == Team.Kind.SINGLE or config.get("max_turns") == 1):
        kind = Team.Kind.SINGLE
    orchestrator = _plan_model(plan, config["model_client"]) if config.get("model_client") else None
    participants = config.get("participants")
    if not isinstance(participants, list) or not participants:
        plan.problems.append(f"Team {_name_of(component)!r} has no participants.")
        return
    first_model = orchestrator
    agent_names: list[str] = []
    for participant in participants:
        if _provider(participant) == P_ASSISTANT and first_model is None:
            first_model = _plan_model(plan, _config(participant).get("model_client"))
        slug = _plan_agent(plan, participant, first_model)
        if slug is not None:
            agent_names.append(slug)
    fields: dict[str, Any] = {
        "name": str(component.get("label") or "Imported team")[:100],
        "description": str(component.get("description") or "")[:2000],
        "kind": kind,
        "slug": str(meta.get("slug") or ""),
        "agents": agent_names,
        "orchestrator": orchestrator,
    }
    _plan_termination(plan, config.get("termination_condition"), fields)
    if kind == Team.Kind.SELECTOR:
        fields["selector_prompt"] = str(config.get("selector_prompt") or "")
        fields["allow_repeated_speaker"] = bool(config.get("allow_repeated_speaker", False))
    if kind == Team.Kind.MAGENTIC_ONE:
        fields["max_stalls"] = int(config.get("max_stalls") or 3)
        fields["max_messages"] = int(config.get("max_turns") or 20)
    plan.teams.append(fields)


def _components(data: Any) -> list[dict[str, Any]]:
    """A component, a list of them, or an AutoGen Studio gallery (``components.{teams,agents,...}``)."""
    if isinstance(data, list):
        return [c for c in data if isinstance(c, dict)]
    if isinstance(data, dict) and isinstance(data.get("components"), dict):
        found: list[dict[str, Any]] = []
        for group in ("models", "terminations", "tools", "agents", "teams"):
            items = data["components"].get(group) or []
            found += [c for c in items if isinstance(c, dict)]
        return found
    if isinstance(data, dict) and "provider" in data:
        return [data]
    raise ImportRejected(["Expected an AutoGen component (with a provider) or an AutoGen Studio gallery."])


def _unique(base: str, taken: Any, sep: str) -> str:
    candidate, n = base, 1
    while taken(candidate):
        n += 1
        candidate = f"{base}{sep}{n}"
    return candidate


def load_component(data: Any, *, by: AbstractBaseUser | None = None) -> ImportResult:
    """Create rows for every supported component in ``data`` (parsed JSON), all or nothing.
    ``by``: the importing user, for the audit log and as the creator of the grants."""
    plan = _Plan()
    for component in _components(data):
        ctype = component.get("component_type")
        if ctype == "team":
            _plan_team(plan, component)
        elif ctype == "agent":
            _plan_agent(plan, component, None)
        elif ctype == "model":
            _plan_model(plan, component)
        elif ctype == "tool":
            _plan_tool(plan, component)
        elif ctype == "termination":
            continue  # only meaningful inside a team
        else:
            plan.problems.append(f"Unsupported component {_provider(component) or '(none)'!r} of type {ctype!r}.")
    if plan.problems:
        raise ImportRejected(plan.problems)
    if not (plan.teams or plan.agents or plan.models or plan.tools):
        raise ImportRejected(["The file holds no team, agent or model client."])
    return _create(plan, by)


def _audit_import(result: ImportResult, by: AbstractBaseUser | None) -> None:
    summary = "; ".join(
        f"{label} {', '.join(names)}"
        for label, names in (
            ("teams", [t.slug for t in result.teams]),
            ("agents", [a.slug for a in result.agents]),
            ("model configs", [m.name for m in result.model_configs]),
            ("pending tools", [t.name for t in result.tools]),
        )
        if names
    )
    created: list[models.Model] = [*result.teams, *result.agents, *result.model_configs, *result.tools]
    for obj in created:
        audit_record(user=by, obj=obj, action=ADDITION, message=f"Imported from AutoGen component JSON: {summary}.")


@transaction.atomic
def _create(plan: _Plan, by: AbstractBaseUser | None = None) -> ImportResult:
    from agents.services import agent_create, model_config_create, team_create

    result = ImportResult()
    models: dict[str, ModelConfig] = {}
    for key, fields in plan.models.items():
        fields = dict(fields)
        existing = ModelConfig.objects.filter(
            name=fields["name"], provider=fields["provider"], model=fields["model"], base_url=fields["base_url"]
        ).first()
        if existing is not None and existing.options == fields["options"]:
            models[key] = existing
            continue
        fields["name"] = _unique(fields["name"], lambda n: ModelConfig.objects.filter(name=n).exists(), " ")
        models[key] = model_config_create(**fields)
        result.model_configs.append(models[key])
    tools = {name: _create_tool(name, fields) for name, fields in plan.tools.items()}
    agents: dict[str, Agent] = {}
    for slug, fields in plan.agents.items():
        fields = dict(fields)
        model = models[fields.pop("model")]
        granted = fields.pop("tools", [])
        unique = _unique(slug, lambda s: Agent.objects.filter(slug=s).exists(), "_")
        agents[slug] = agent_create(slug=unique, model_config=model, **fields)
        result.agents.append(agents[slug])
        from tools.services import tool_grant_create

        for name in granted:
            tool_grant_create(agent=agents[slug], tool=tools[name], created_by=by)
    result.tools = [t for name, t in tools.items() if "existing" not in plan.tools[name]]
    for agent in agents.values():
        # Handoff targets follow their agents' new slugs (a clash on import renames an agent).
        renamed = [agents[h].slug if h in agents else h for h in agent.handoffs or []]
        if renamed != agent.handoffs:
            agent.handoffs = renamed
            agent.save(update_fields=["handoffs"])
    for fields in plan.teams:
        fields = dict(fields)
        names = fields.pop("agents")
        orchestrator = fields.pop("orchestrator")
        base = fields.pop("slug") or re.sub(r"[^a-z0-9-]+", "-", fields["name"].lower()).strip("-") or "team"
        slug = _unique(base[:60], lambda s: Team.objects.filter(slug=s).exists(), "-")
        team = team_create(
            slug=slug,
            agents=[agents[n] for n in names],
            orchestrator_model=models[orchestrator] if orchestrator else None,
            **fields,
        )
        result.teams.append(team)
    _audit_import(result, by)
    return result


def _create_tool(name: str, fields: dict[str, Any]) -> Any:
    from tools.models import Tool, ToolVersion

    if "existing" in fields:
        return Tool.objects.get(pk=fields["existing"])
    tool = Tool.objects.create(name=name, kind=Tool.Kind.PYTHON, status=Tool.Status.PENDING, **fields)
    ToolVersion.objects.create(
        tool=tool,
        version=tool.version,
        description=tool.description,
        parameters=tool.parameters,
        source=tool.source,
        config=tool.config,
    )
    return tool


def import_file(raw: bytes | str, *, by: AbstractBaseUser | None = None) -> ImportResult:
    return load_component(parse(raw), by=by)


def team_fingerprint(team: Team) -> dict[str, Any]:
    """A team's content without its identities (slugs, model config names): equal teams have equal
    fingerprints. Agent slugs (names, handoff targets) become their positions."""
    data = dump_team(team)
    data["config"]["metadata"].pop("slug", None)
    positions = {m.agent.slug: f"<agent{m.position}>" for m in team.members.select_related("agent")}

    def strip(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v, k) for k, v in node.items() if not (k == "label" and node.get("component_type") == "model")
            }
        if isinstance(node, list):
            return [strip(v, key) for v in node]
        if isinstance(node, str) and key in ("name", "handoffs"):
            return positions.get(node, node)
        return node

    return dict(strip(data))


__all__ = [
    "ImportRejected",
    "ImportResult",
    "dump_component",
    "dump_gallery",
    "dump_team",
    "import_file",
    "load_component",
    "team_fingerprint",
]
