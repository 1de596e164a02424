from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agents.providers import clear_client_cache
from conversations.runner import InlineRunner, get_runner


@pytest.fixture(autouse=True)
def _fresh_model_clients() -> None:
    # Replay scripts are cached per config id; ids are reused across tests after a flush.
    clear_client_cache()


@pytest.fixture
async def inline_runner() -> AsyncIterator[InlineRunner]:
    """The inline runner bound to this test's event loop, as ServerLoopMiddleware does for Daphne."""
    runner = get_runner()
    assert isinstance(runner, InlineRunner)
    runner.bind_loop(asyncio.get_running_loop())
    # Start-up recovery is tested on its own; here it must not fail the test's fresh runs.
    runner._recovered = True
    yield runner
    await runner.wait_idle()
