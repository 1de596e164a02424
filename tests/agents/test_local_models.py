"""The local models' files: joining the part packages once, verifying them, and reading the GGUF
header before llama.cpp opens a file. Fast tests run on small files generated here; the one marked
``localmodel`` joins Qwen2.5-Coder-0.5B from its real installed packages and generates with it."""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from agents.models import ModelConfig
from agents.providers import ProviderError, local, local_models
from agents.providers.local_models import MODELS, PackagedModel, check_gguf, join_verified, read_gguf_info

# --- A small GGUF writer ------------------------------------------------------------------------

STRING, ARRAY, UINT32 = 8, 9, 4
F32 = 0


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def gguf_bytes(
    *,
    architecture: str = "qwen2",
    name: str = "Qwen2.5 Coder 0.5B Instruct",
    chat_template: str | None = "{% for m in messages %}{{ m.content }}{% endfor %}",
    magic: bytes = b"GGUF",
    version: int = 3,
    tensors: tuple[tuple[str, int], ...] = (("token_embd.weight", 64), ("output.weight", 16)),
) -> bytes:
    """A well-formed GGUF file: a few metadata values (a string array among them, as a vocabulary
    is), F32 tensors of the given element counts, their data aligned to 32 bytes."""
    metadata: list[tuple[str, int, bytes]] = [
        ("general.architecture", STRING, _string(architecture)),
        ("general.name", STRING, _string(name)),
        ("general.size_label", STRING, _string("0.5B")),
        ("tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, 3) + b"".join(map(_string, ["a", "b", "c"]))),
        ("qwen2.context_length", UINT32, struct.pack("<I", 32768)),
    ]
    if chat_template is not None:
        metadata.append(("tokenizer.chat_template", STRING, _string(chat_template)))
    header = magic + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, kind, value in metadata:
        header += _string(key) + struct.pack("<I", kind) + value
    offset = 0
    for tensor_name, elements in tensors:
        header += _string(tensor_name) + struct.pack("<IQIQ", 1, elements, F32, offset)
        offset += -(-elements * 4 // 32) * 32
    header += b"\0" * (-len(header) % 32)
    return header + bytes(range(256)) * (offset // 256) + bytes(offset % 256)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


QWEN_05B = MODELS["qwen2.5-coder-0.5b"]


# --- The GGUF header ----------------------------------------------------------------------------


def test_a_complete_file_is_read_and_its_tensor_data_ends_at_the_end_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "m.gguf", gguf_bytes())
    info = check_gguf(path, QWEN_05B)
    assert (info.version, info.architecture, info.name, info.size_label) == (
        3,
        "qwen2",
        "Qwen2.5 Coder 0.5B Instruct",
        "0.5B",
    )
    assert info.has_chat_template and info.tensor_count == 2
    assert info.data_end == info.file_size == path.stat().st_size


@pytest.mark.parametrize("keep", [0.99, 0.5, 0.1, 0.01])
def test_a_truncated_file_is_refused_with_a_clear_error(tmp_path: Path, keep: float) -> None:
    data = gguf_bytes()
    path = write(tmp_path / "cut.gguf", data[: int(len(data) * keep)])
    with pytest.raises(ProviderError, match="is truncated"):
        read_gguf_info(path)


def test_wrong_magic_an_old_version_and_an_empty_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="not a GGUF model file"):
        read_gguf_info(write(tmp_path / "a.gguf", gguf_bytes(magic=b"GGML")))
    with pytest.raises(ProviderError, match="GGUF version 1"):
        read_gguf_info(write(tmp_path / "b.gguf", gguf_bytes(version=1)))
    with pytest.raises(ProviderError, match="truncated"):
        read_gguf_info(write(tmp_path / "c.gguf", b""))
    with pytest.raises(ProviderError, match="Cannot read"):
        read_gguf_info(tmp_path)  # a directory


def test_garbage_lengths_are_an_error_not_a_huge_allocation(tmp_path: Path) -> None:
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 62)
    with pytest.raises(ProviderError, match="implausible string length"):
        read_gguf_info(write(tmp_path / "g.gguf", header + b"x" * 64))
    counts = b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0)
    with pytest.raises(ProviderError, match="implausible count"):
        read_gguf_info(write(tmp_path / "h.gguf", counts))


def test_a_model_without_chat_template_or_of_another_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="no chat template"):
        check_gguf(write(tmp_path / "base.gguf", gguf_bytes(chat_template=None)))
    smol = write(tmp_path / "smol.gguf", gguf_bytes(architecture="llama", name="Smollm2 135M 8k"))
    assert check_gguf(smol, MODELS["smollm2-135m"]).architecture == "llama"
    with pytest.raises(ProviderError, match=r"Smollm2 135M 8k \(llama\), not Qwen2.5-Coder-0.5B-Instruct"):
        check_gguf(smol, QWEN_05B)
    other_size = write(tmp_path / "15.gguf", gguf_bytes(name="Qwen2.5-Coder-1.5B-Instruct"))
    assert check_gguf(other_size, MODELS["qwen2.5-coder-1.5b"]).name
    with pytest.raises(ProviderError, match=r"not Qwen2\.5-Coder-0\.5B-Instruct"):
        check_gguf(other_size, QWEN_05B)


# --- Joining and verifying ----------------------------------------------------------------------


def split(data: bytes, directory: Path, pieces: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // pieces)
    parts = []
    for index in range(pieces):
        parts.append(write(directory / f"part{index + 1:02d}.bin", data[index * step : (index + 1) * step]))
    return parts


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_parts_are_joined_in_order_and_verified(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    parts = split(data, tmp_path / "parts", 3)
    target = tmp_path / "models" / "m.gguf"
    seen: list[int] = []
    join_verified(
        parts,
        target,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        progress=lambda done, total: seen.append(done),
    )
    assert target.read_bytes() == data
    assert seen[-1] == len(data) and seen == sorted(seen)
    assert leftovers(target.parent) == []


def test_a_wrong_hash_or_a_truncated_part_leaves_no_file(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    parts = split(data, tmp_path / "parts", 4)
    target = tmp_path / "models" / "m.gguf"
    with pytest.raises(ProviderError, match=r"sha256 is \w+, not the expected"):
        join_verified(parts, target, size=len(data), sha256="0" * 64)
    assert not target.exists() and leftovers(target.parent) == []

    reversed_parts = list(reversed(parts))  # same bytes, wrong order
    with pytest.raises(ProviderError, match="not the expected"):
        join_verified(reversed_parts, target, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    parts[2].write_bytes(parts[2].read_bytes()[:-1])
    with pytest.raises(ProviderError, match="not 200000: one is truncated"):
        join_verified(parts, target, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    parts[2].write_bytes(parts[2].read_bytes() + b"xx")
    with pytest.raises(ProviderError, match="more than 200000 bytes"):
        join_verified(parts, target, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert not target.exists() and leftovers(target.parent) == []


def test_concurrent_builders_join_once_and_all_get_the_complete_file(tmp_path: Path) -> None:
    data = os.urandom(2_000_000)
    parts = split(data, tmp_path / "parts", 5)
    target = tmp_path / "models" / "m.gguf"
    digest = hashlib.sha256(data).hexdigest()
    joined_by: set[int] = set()
    results: list[bytes] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def build(builder: int) -> None:
        try:
            start.wait()
            path = join_verified(
                parts, target, size=len(data), sha256=digest, progress=lambda done, total: joined_by.add(builder)
            )
            results.append(path.read_bytes())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(joined_by) == 1, "more than one builder joined the parts"
    assert results == [data] * 6
    assert leftovers(target.parent) == []


# --- Finding the installed part packages without importing them ---------------------------------


def fake_part_packages(site: Path, data: bytes, pieces: int) -> tuple[str, ...]:
    """Installed distributions, as pip leaves them (a RECORD lists the files), whose package code
    would fail loudly if anything imported it."""
    names = []
    step = -(-len(data) // pieces)
    for index in range(pieces):
        name = f"lodestone_test_part{index + 1}"
        package = site / name
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('a part package was imported')\n")
        (package / "data" / f"part{index + 1:02d}.bin").write_bytes(data[index * step : (index + 1) * step])
        info = site / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n")
        (info / "RECORD").write_text(
            f"{name}/__init__.py,,\n{name}/data/part{index + 1:02d}.bin,,\n{name}-1.0.dist-info/RECORD,,\n"
        )
        names.append(name.replace("_", "-"))
    return tuple(names)


def test_model_file_joins_installed_packages_once_without_running_their_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = gguf_bytes()  # a real header, so the joined file also passes check_gguf
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    distributions = fake_part_packages(site, data, 3)
    model = PackagedModel(
        key="test",
        title="Test-Model",
        architecture="qwen2",
        name_contains="qwen2.5 coder 0.5b",
        distributions=distributions,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        licence="Apache-2.0",
        author="tests",
    )
    models = tmp_path / "models"
    models.mkdir()
    stale = write(models / "Test-Model.000000000000.gguf", b"an older version")
    path = local_models.model_file(model, models)
    assert path == models / model.file_name and path.read_bytes() == data
    assert check_gguf(path, model).tensor_count == 2
    assert not stale.exists()
    assert not any(name.startswith("lodestone_test_part") for name in sys.modules)
    mtime = path.stat().st_mtime_ns
    assert local_models.model_file(model, models).stat().st_mtime_ns == mtime  # not joined again


def test_missing_part_packages_name_the_requirements_file_to_install(tmp_path: Path) -> None:
    model = PackagedModel(
        key="qwen2.5-coder-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct",
        architecture="qwen2",
        name_contains="qwen",
        distributions=("lodestone-no-such-part1", "lodestone-no-such-part2"),
        size=1,
        sha256="0" * 64,
        licence="Apache-2.0",
        author="tests",
    )
    with pytest.raises(ProviderError) as caught:
        local_models.model_file(model, tmp_path)
    message = str(caught.value)
    assert "lodestone-no-such-part1 is not installed" in message
    assert "--require-hashes --no-deps -r requirements/models-qwen2.5-coder-0.5b.txt" in message


# --- The provider -------------------------------------------------------------------------------


def local_config(model: str = "") -> ModelConfig:
    return ModelConfig(name="local", provider=ModelConfig.Provider.LOCAL, model=model)


def test_the_setting_chooses_the_packaged_model_and_an_unknown_one_is_a_clear_error() -> None:
    # The product's default is the 1.5B (the quality benchmark's choice); the tests run the bundled
    # SmolLM2 unless they name another (config/settings/test.py).
    assert local_models.DEFAULT_MODEL == "qwen2.5-coder-1.5b"
    path = local.local_model_path("")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert check_gguf(path, MODELS["smollm2-135m"]).name.lower().startswith("smollm2")
    with override_settings(LODESTONE_LOCAL_MODEL="qwen-9000"), pytest.raises(ProviderError) as caught:
        local.local_model_path("")
    assert "Unknown local model 'qwen-9000'" in str(caught.value) and "qwen2.5-coder-1.5b" in str(caught.value)
    with pytest.raises(ProviderError, match="Unknown local model 'gpt-4o'"):
        local.local_client(local_config("gpt-4o"))


def test_a_bad_gguf_path_is_a_provider_error_before_llama_cpp_sees_it(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="Model file not found"):
        local.local_client(local_config(str(tmp_path / "missing.gguf")))
    cut = gguf_bytes()
    truncated = write(tmp_path / "cut.gguf", cut[: len(cut) // 2])
    with pytest.raises(ProviderError, match="is truncated"):
        local.local_client(local_config(str(truncated)))
    text = write(tmp_path / "notes.gguf", b"these are not model weights\n" * 10)
    with pytest.raises(ProviderError, match="wrong magic"):
        local.local_client(local_config(str(text)))


def test_a_file_llama_cpp_refuses_after_all_is_a_provider_error(tmp_path: Path) -> None:
    """A well-formed header of an architecture llama.cpp does not know: llama.cpp itself says no,
    and that reaches the run as a ProviderError rather than a crash."""
    path = write(tmp_path / "odd.gguf", gguf_bytes(architecture="lodestone-unknown", name="Odd"))
    client = local.local_client(local_config(str(path)))
    with pytest.raises(ProviderError, match=r"llama\.cpp could not load"):
        client.count_tokens([])


# --- The real thing -----------------------------------------------------------------------------


def _require_part_packages(model: PackagedModel) -> list[Path]:
    try:
        return local_models.source_files(model)
    except ProviderError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{exc} CI must provide it (`make test` installs it).")
        pytest.skip(str(exc))


@pytest.mark.localmodel
def test_qwen_05b_is_joined_from_its_real_packages_verified_and_generates(tmp_path: Path, settings: Any) -> None:
    parts = _require_part_packages(QWEN_05B)
    assert [p.name for p in parts] == [f"part{n:02d}.bin" for n in range(1, 7)]
    settings.LODESTONE_MODEL_DIR = tmp_path / "models"
    settings.LODESTONE_LOCAL_MODEL = "qwen2.5-coder-0.5b"

    path = local.local_model_path("")
    assert path == tmp_path / "models" / QWEN_05B.file_name
    assert path.stat().st_size == QWEN_05B.size
    info = check_gguf(path, QWEN_05B)
    assert info.architecture == "qwen2" and info.size_label == "0.5B" and info.data_end == QWEN_05B.size

    from llama_cpp import Llama

    llama = Llama(model_path=str(path), n_ctx=512, n_threads=2, verbose=False)
    try:
        reply = llama.create_chat_completion(
            messages=[{"role": "user", "content": "Reply with one word: what colour is a clear daytime sky?"}],
            max_tokens=8,
            temperature=0,
        )
    finally:
        llama.close()
    text = str(reply["choices"][0]["message"]["content"])  # type: ignore[index]
    assert "blue" in text.lower()
