"""The official ``openai`` client against /v1 of a live Daphne server (a real socket)."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import REPO, VENV_BIN, live_daphne

KEY = "a" * 40  # the shape of a key imported from DRF's old token table: those keep working
SETUP = textwrap.dedent(
    f"""
    from django.contrib.auth import get_user_model
    from config.accounts.models import ApiKey, key_digest, key_prefix
    from agents import services
    from agents.models import Team

    model = services.model_config_create(
        name="Replay", provider="replay",
        options={{"responses": ["Paris is the capital.", "Correct.", "Berlin it is.", "Right."], "chunk_delay": 0.01}},
    )
    writer = services.agent_create(slug="writer", name="Writer", description="Answers.", model_config=model)
    checker = services.agent_create(slug="checker", name="Checker", description="Checks.", model_config=model)
    services.team_create(slug="duo", name="Duo", kind=Team.Kind.ROUND_ROBIN, agents=[writer, checker], max_messages=3)
    echo_model = services.model_config_create(
        name="Echo", provider="replay", options={{"responses": ["Seen: {{prompt}}", "Seen: {{prompt}}"]}}
    )
    services.agent_create(
        slug="echo", name="Echo", description="Echoes its prompt.", model_config=echo_model,
        system_message="You repeat your prompt.",
    )
    user = get_user_model().objects.create_user(username="api-user", password="pw-Secret-123")
    ApiKey.objects.create(user=user, name="openai client", prefix=key_prefix({KEY!r}), digest=key_digest({KEY!r}))
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    var_dir = tmp_path_factory.mktemp("openai-var")
    with live_daphne(var_dir, SETUP) as (url, _log):
        yield url, var_dir


def conversations_of(var_dir: Path) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "LODESTONE_VAR_DIR": str(var_dir)}
    env.pop("DATABASE_URL", None)
    script = (
        "from conversations.models import Message\n"
        "for m in Message.objects.order_by('conversation_id', 'seq'):\n"
        "    print(m.conversation.owner.username, m.conversation_id, m.source, m.type, m.content)\n"
    )
    done = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "shell", "-c", script],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    return done.stdout.decode()


def test_openai_client_lists_models_and_completes_with_and_without_streaming(server: tuple[str, Path]) -> None:
    import openai

    url, var_dir = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY)
    ids = [m.id for m in client.models.list()]
    assert "duo" in ids and "writer" in ids

    completion = client.chat.completions.create(
        model="duo", messages=[{"role": "user", "content": "Capital of France?"}]
    )
    assert completion.choices[0].message.content == "Correct."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0

    stream = client.chat.completions.create(
        model="duo", messages=[{"role": "user", "content": "Capital of Germany?"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Berlin it is.\n\nRight."

    stored = conversations_of(var_dir)
    assert "api-user" in stored and "user user Capital of France?" in stored
    assert "writer text Berlin it is." in stored and "checker text Right." in stored


def test_bad_calls_get_openai_style_errors(server: tuple[str, Path]) -> None:
    import openai

    url, _ = server
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong").models.list()
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="duo", messages=[{"role": "system", "content": "Hi"}])


HISTORY: list[Any] = [
    {"role": "system", "content": "Answer with the name the user gave."},
    {"role": "user", "content": "My name is Ada."},
    {"role": "assistant", "content": "Nice to meet you, Ada."},
    {"role": "user", "content": "What is my name?"},
]


def test_earlier_turns_of_the_request_reach_the_team_and_are_stored(server: tuple[str, Path]) -> None:
    import openai

    url, var_dir = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY)
    completion = client.chat.completions.create(model="echo", messages=HISTORY)
    # The echo model answers with its whole prompt: its own system message, then every turn.
    assert completion.choices[0].message.content == (
        "Seen: You repeat your prompt. | Answer with the name the user gave. | My name is Ada. | "
        "Nice to meet you, Ada. | What is my name?"
    )
    conversation = completion.model_extra["lodestone"]["conversation_id"]  # type: ignore[index]
    stored = [line.split(" ", 2)[2] for line in conversations_of(var_dir).splitlines() if f" {conversation} " in line]
    assert stored[:4] == [
        "system text Answer with the name the user gave.",
        "user user My name is Ada.",
        "assistant text Nice to meet you, Ada.",
        "user user What is my name?",
    ]
    assert stored[4].startswith("echo text Seen: You repeat your prompt. |") and len(stored) == 5

    # Streaming takes the same path.
    stream = client.chat.completions.create(model="echo", messages=HISTORY, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "My name is Ada. | Nice to meet you, Ada. | What is my name?" in text


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "system", "content": "Hi"}], "`messages` needs a message with role `user`."),
        (
            [{"role": "wizard", "content": "Hi"}, {"role": "user", "content": "Hi"}],
            "`messages[0].role` is 'wizard': use one of system, developer, user, assistant.",
        ),
        (
            [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "  "},
                {"role": "user", "content": "?"},
            ],
            "`messages[1].content` is empty: every message needs text.",
        ),
        (
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
            "The last message must have role `user`: it is the one the team answers.",
        ),
    ],
)
def test_bad_histories_are_400_with_an_openai_error(server: tuple[str, Path], messages: list[Any], error: str) -> None:
    import openai

    url, _ = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="duo", messages=messages)
    assert caught.value.status_code == 400
    assert caught.value.body == {"message": error, "type": "invalid_request_error", "code": None}
