"""Building the local embedder's ONNX model from the packaged weights: cached, verified, refused when wrong."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.checks import Error
from django.test import override_settings

from memory.embeddings import EmbedderError, minilm_onnx
from memory.embeddings.local import LocalEmbedder
from memory.vector.checks import memory_backend_settings


def test_the_model_is_built_once_then_reused(tmp_path: Path) -> None:
    stale = tmp_path / f"{minilm_onnx.MODEL_PREFIX}.0123456789ab.fused-0.fp32.onnx"
    stale.write_bytes(b"an older recipe's model")
    other_precision = tmp_path / f"{minilm_onnx.MODEL_PREFIX}.0123456789ab.fused-0.int8.onnx"
    other_precision.write_bytes(b"another precision, maybe in use")
    first = minilm_onnx.model_path("fp32", tmp_path)
    assert not stale.exists() and other_precision.exists()  # replaced models are removed
    other_precision.unlink()
    built_at = first.stat().st_mtime_ns
    # The name says what it was built from and how: a new recipe or new weights build a new file.
    assert minilm_onnx.WEIGHTS_SHA256[:12] in first.name and minilm_onnx.RECIPE in first.name
    assert minilm_onnx.model_path("fp32", tmp_path) == first
    assert first.stat().st_mtime_ns == built_at
    # Nothing half-written is left beside it.
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_concurrent_builds_leave_one_whole_model(tmp_path: Path) -> None:
    paths: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            paths.append(minilm_onnx.model_path("fp32", tmp_path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(paths)) == 1
    vectors = LocalEmbedder(precision="fp32", model_dir=tmp_path, cache_entries=0).embed(["still whole"])
    assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-5


def test_weights_that_are_not_the_expected_model_are_refused(tmp_path: Path, monkeypatch: Any) -> None:
    forged = tmp_path / "model.safetensors"
    forged.write_bytes(minilm_onnx.weights_file().read_bytes()[:-10] + b"0123456789")
    monkeypatch.setattr(minilm_onnx, "weights_file", lambda: forged)
    with pytest.raises(EmbedderError, match="sha256 differs"):
        minilm_onnx.model_path("fp32", tmp_path / "models")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").glob("*.onnx"))


def test_an_int8_model_that_disagrees_with_fp32_is_not_used(tmp_path: Path, monkeypatch: Any) -> None:
    def broken_quantize(float_model: Path, target: Path) -> None:
        # A "quantised" model whose attention reads the wrong layer's weights.
        weights = dict(minilm_onnx.load_weights())
        for part in ("query", "key", "value"):
            for suffix in ("weight", "bias"):
                a = f"encoder.layer.0.attention.self.{part}.{suffix}"
                b = f"encoder.layer.5.attention.self.{part}.{suffix}"
                weights[a], weights[b] = weights[b], weights[a]
        target.write_bytes(minilm_onnx.build_float_graph(weights))

    monkeypatch.setattr(minilm_onnx, "quantize", broken_quantize)
    with pytest.raises(EmbedderError, match="disagrees with the float one"):
        minilm_onnx.model_path("int8", tmp_path)
    assert not any(tmp_path.glob("*.onnx"))


def test_unknown_precision_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="Unknown local embedder precision 'int4'"):
        minilm_onnx.model_path("int4", tmp_path)  # type: ignore[arg-type]


def test_unknown_precision_fails_the_start_up_check() -> None:
    with override_settings(LODESTONE_LOCAL_EMBEDDER_PRECISION="fp16"):
        errors = [e for e in memory_backend_settings() if isinstance(e, Error)]
    assert [e.id for e in errors] == ["memory.E006"]
    assert "fp16" in errors[0].msg
    assert memory_backend_settings() == []
