from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import require_program
from tools.sandbox import reset_sandbox


@pytest.fixture
def bwrap() -> str:
    return require_program("bwrap", "apt-get install bubblewrap")


@pytest.fixture(autouse=True)
def _workspaces(settings: pytest.FixtureRequest) -> Iterator[Path]:
    """Workspaces in a fresh folder the sandbox user can traverse; the sandbox choice re-probed."""
    root = Path(tempfile.mkdtemp(prefix="lodestone-ws-"))
    os.chmod(root, 0o711)  # noqa: S103 - traversable (not readable) by the sandbox user
    settings.LODESTONE_WORKSPACES_DIR = str(root)  # type: ignore[attr-defined]
    reset_sandbox()
    yield root
    reset_sandbox()
    shutil.rmtree(root, ignore_errors=True)
