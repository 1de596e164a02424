from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.providers import clear_client_cache
from conversations.runner import InlineRunner, get_runner
from memory.vector import reset_vector_stores


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


@pytest.fixture
def own_vector_store(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """An embedded vector store of this test's own (experience ids are reused after each test's
    rollback, so a shared store would hold another test's vectors under them)."""
    settings.LODESTONE_VECTOR_STORE = "embedded"
    settings.LODESTONE_VECTOR_DIR = str(tmp_path / "vectors")
    reset_vector_stores()
    yield tmp_path / "vectors"
    reset_vector_stores()
