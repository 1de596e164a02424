"""Memory benchmark: vector search and embedding on this machine (not a test).

- Structured 384-dim vectors (a Gaussian mixture in a 32-dim latent space, projected to 384 dims
  plus noise, L2-normalised: embedding-like, unlike uniform noise where "nearest" means nothing),
  100k and 1M of them. For each: build time, single-query latency p50/p99 and recall@10 against
  exact search, for the embedded store (SQLite + numpy + usearch HNSW, through its public API),
  FAISS exact (IndexFlatIP) and FAISS HNSW (IndexHNSWFlat).
- A real-text set: generated sentences embedded by the local embedder in both precisions (sentences/s,
  batch and one at a time), then searched through the embedded store with the HNSW index forced on
  (recall@10 on real embeddings).
- ``memory.services.experience_store`` end to end on a fresh SQLite database (p50/p95).

Writes the results between the memory markers in docs/benchmarks.md.

    .venv/bin/python bench/memory.py [--sizes 100000,1000000] [--queries 300]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["LODESTONE_VAR_DIR"] = tempfile.mkdtemp(prefix="lodestone-bench-memory-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from memory.embeddings.local import LocalEmbedder  # noqa: E402
from memory.vector import VectorItem  # noqa: E402
from memory.vector.embedded import EmbeddedVectorStore  # noqa: E402

DIMENSION = 384
LATENT = 32
CLUSTERS = 2000
K = 10
FAISS_HNSW_M = 32
FAISS_EF_CONSTRUCTION = 40
FAISS_EF_SEARCH = 64
EMBEDDED_ENGINE = "embedded store (usearch HNSW f16 + exact re-rank)"
MARK_START, MARK_END = "<!-- memory:start -->", "<!-- memory:end -->"
LOAD_AT_START = os.getloadavg()[0]
F32 = npt.NDArray[np.float32]


def structured(count: int, seed: int) -> tuple[F32, np.random.Generator]:
    """``count`` vectors and 1 query per 1000 (near existing points, not in the set)."""
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((LATENT, DIMENSION)).astype(np.float32)
    centres = 2.0 * rng.standard_normal((CLUSTERS, LATENT)).astype(np.float32)
    out = np.empty((count, DIMENSION), dtype=np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        latent = centres[rng.integers(0, CLUSTERS, n)] + rng.standard_normal((n, LATENT)).astype(np.float32)
        chunk = latent @ projection + 0.5 * rng.standard_normal((n, DIMENSION)).astype(np.float32)
        out[start : start + n] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out, rng


def make_queries(data: F32, count: int, rng: np.random.Generator) -> F32:
    picked = data[rng.integers(0, len(data), count)]
    moved = picked + 0.02 * rng.standard_normal(picked.shape).astype(np.float32)
    return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)


def exact_top(data: F32, queries: F32, k: int) -> npt.NDArray[np.int64]:
    index = faiss.IndexFlatIP(DIMENSION)
    index.add(data)
    _, ids = index.search(queries, k)
    return ids.astype(np.int64)


def recall(found: list[list[int]], truth: npt.NDArray[np.int64]) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=True)]))


def latency(fn, queries: F32) -> tuple[list[list[int]], float, float]:  # type: ignore[no-untyped-def]
    results, times = [], []
    for query in queries:
        start = time.perf_counter()
        results.append(fn(query))
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000
    return results, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def bench_size(count: int, n_queries: int) -> list[dict[str, object]]:
    print(f"--- {count:,} vectors", flush=True)
    data, rng = structured(count, seed=count)
    queries = make_queries(data, n_queries, rng)
    truth = exact_top(data, queries, K)
    rows: list[dict[str, object]] = []

    # Embedded store, through its public API (SQLite durability included in the build time).
    path = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    start = time.perf_counter()
    store = EmbeddedVectorStore(DIMENSION, path=path)
    batch = 10_000
    for offset in range(0, count, batch):
        store.upsert(
            [
                VectorItem(id=str(i), vector=data[i], metadata={"g": i % 10})
                for i in range(offset, min(count, offset + batch))
            ]
        )
    build = time.perf_counter() - start
    found, p50, p99 = latency(lambda q: [int(m.id) for m in store.query(q, k=K)], queries)
    rows.append(
        {
            "n": count,
            "engine": EMBEDDED_ENGINE,
            "build": build,
            "p50": p50,
            "p99": p99,
            "recall": recall(found, truth),
        }
    )
    print(rows[-1], flush=True)
    found, p50, p99 = latency(
        lambda q: [int(m.id) for m in store.query(q, k=K, filter={"g": {"$in": [3]}})], queries[:50]
    )
    filtered_truth = []
    for q in queries[:50]:
        scores = data[3::10] @ q
        filtered_truth.append(np.argsort(-scores)[:K] * 10 + 3)
    rows.append(
        {
            "n": count,
            "engine": "embedded store, filter matching 10%",
            "build": None,
            "p50": p50,
            "p99": p99,
            "recall": recall(found, np.asarray(filtered_truth)),
        }
    )
    print(rows[-1], flush=True)
    store.close()
    shutil.rmtree(path, ignore_errors=True)

    start = time.perf_counter()
    flat = faiss.IndexFlatIP(DIMENSION)
    flat.add(data)
    build = time.perf_counter() - start
    found, p50, p99 = latency(lambda q: flat.search(q[None, :], K)[1][0].tolist(), queries)
    rows.append(
        {
            "n": count,
            "engine": "FAISS exact (IndexFlatIP)",
            "build": build,
            "p50": p50,
            "p99": p99,
            "recall": recall(found, truth),
        }
    )
    print(rows[-1], flush=True)
    flat.reset()

    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIMENSION, FAISS_HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = FAISS_EF_CONSTRUCTION
    hnsw.add(data)
    build = time.perf_counter() - start
    hnsw.hnsw.efSearch = FAISS_EF_SEARCH
    found, p50, p99 = latency(lambda q: hnsw.search(q[None, :], K)[1][0].tolist(), queries)
    rows.append(
        {
            "n": count,
            "engine": f"FAISS HNSW (M={FAISS_HNSW_M}, efC={FAISS_EF_CONSTRUCTION}, efS={FAISS_EF_SEARCH})",
            "build": build,
            "p50": p50,
            "p99": p99,
            "recall": recall(found, truth),
        }
    )
    print(rows[-1], flush=True)
    hnsw.reset()
    gc.collect()
    return rows


SUBJECTS = [
    "The agent",
    "The critic",
    "A planner",
    "The coder",
    "Our team",
    "The user",
    "The reviewer",
    "The scheduler",
]
VERBS = [
    "fixed",
    "investigated",
    "summarised",
    "rejected",
    "approved",
    "refactored",
    "documented",
    "benchmarked",
    "deployed",
    "rolled back",
    "tested",
    "profiled",
]
OBJECTS = [
    "the login page",
    "a slow database query",
    "the billing report",
    "the flaky browser test",
    "a memory leak in the worker",
    "the onboarding email",
    "the search ranking",
    "a broken migration",
    "the cache settings",
    "the API rate limits",
    "the quarterly forecast",
    "a customer complaint",
]
DETAILS = [
    "after the outage on Monday",
    "because the numbers did not add up",
    "with help from the critic",
    "before the release",
    "in under an hour",
    "using the staging data",
    "and wrote down the lesson",
    "but the root cause is still unknown",
    "for the second time this week",
    "as the user asked",
]


def sentences(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(DETAILS)} (note {i})."
        for i in range(count)
    ]


def embedding_rates(precision: str, texts: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    embedder = LocalEmbedder(precision=precision, cache_entries=0)  # type: ignore[arg-type]
    load = time.perf_counter() - start  # includes building the model on the first run
    embedder.embed(texts[:64])  # warm-up
    start = time.perf_counter()
    embedder.embed(texts)
    batch_rate = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    for text in texts[:200]:
        embedder.embed([text])
    single_rate = 200 / (time.perf_counter() - start)
    return {"load": load, "batch_rate": batch_rate, "single_rate": single_rate}


def bench_store_experience(count: int = 300) -> dict[str, float]:
    """``memory.services.experience_store`` end to end, as the app calls it: clean, database row
    (SQLite, default settings), embed (local, default precision), durable upsert (embedded store)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from memory import services

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password=None)
    memorable = sentences(count + 20, seed=1234)
    for i, text in enumerate(memorable[:20]):  # warm-up: model, store, connections
        services.experience_store(text=f"{text} (warm-up {i})", owner=user)
    times = []
    for i, text in enumerate(memorable[20:]):
        start = time.perf_counter()
        services.experience_store(text=f"{text} ({i} extra)", owner=user, importance=0.5)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000
    return {"store_p50": float(np.percentile(ms, 50)), "store_p95": float(np.percentile(ms, 95))}


def bench_text(n_texts: int) -> dict[str, float]:
    print(f"--- real text: {n_texts:,} sentences", flush=True)
    texts = sentences(n_texts)
    int8 = embedding_rates("int8", texts)
    fp32 = embedding_rates("fp32", texts)
    embedder = LocalEmbedder(cache_entries=0)
    vectors = embedder.embed(texts)

    path = Path(tempfile.mkdtemp(prefix="bench-text-"))
    store = EmbeddedVectorStore(DIMENSION, path=path, ann_threshold=0)  # HNSW on, even for a small set
    store.upsert([VectorItem(id=str(i), vector=v, metadata={}) for i, v in enumerate(vectors)])
    query_texts = sentences(200, seed=99)
    queries = embedder.embed(query_texts)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :K]
    found = [[int(m.id) for m in store.query(q, k=K)] for q in queries]
    text_recall = recall(found, truth)
    store.close()
    shutil.rmtree(path, ignore_errors=True)
    return {
        "n": n_texts,
        "tokens": float(np.mean([len(embedder.tokens(t)) for t in texts[:500]])),
        "load": int8["load"],
        "batch_rate": int8["batch_rate"],
        "single_rate": int8["single_rate"],
        "fp32_batch_rate": fp32["batch_rate"],
        "fp32_single_rate": fp32["single_rate"],
        "recall": text_recall,
        **bench_store_experience(),
    }


def goals_line(rows: list[dict[str, object]], text: dict[str, float]) -> str:
    """The issue's goals on this 2-core machine, judged from this run's figures."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    largest = max((r for r in rows if r["engine"] == EMBEDDED_ENGINE), key=lambda r: int(str(r["n"])), default=None)
    parts = []
    if largest is not None:
        recall_10, p50 = float(str(largest["recall"])), float(str(largest["p50"]))
        parts.append(
            f"recall@10 ≥ 0.95 with p50 ≤ 2 ms at {int(str(largest['n'])):,} vectors: "
            f"{verdict(recall_10 >= 0.95 and p50 <= 2.0)} ({recall_10:.3f}, {p50:.2f} ms)"
        )
    parts.append(f"≥ 900 sentences/s: {verdict(text['batch_rate'] >= 900)} ({text['batch_rate']:,.0f}/s, int8 default)")
    parts.append(f"`store_experience` p95 ≤ 50 ms: {verdict(text['store_p95'] <= 50)} ({text['store_p95']:.1f} ms)")
    return "Goals: " + "; ".join(parts) + "."


def render(rows: list[dict[str, object]], text: dict[str, float], seconds: float) -> str:
    lines = [
        MARK_START,
        "## Memory: vector search and embeddings",
        "",
        f"`bench/memory.py`, one run on {platform.processor() or platform.machine()} ({os.cpu_count()} cores), "
        f"{time.strftime('%Y-%m-%d')}, {seconds:.0f} s in all. Structured 384-dim unit vectors (a "
        f"{CLUSTERS}-cluster Gaussian mixture in a {LATENT}-dim latent space, projected, plus noise); queries are "
        f"perturbed data points; recall@{K} against exact inner-product search; latency is one query at a time.",
        f"Load average when it started: {LOAD_AT_START:.1f} (other processes share the 2 cores).",
        "",
        "| vectors | engine | build (s) | query p50 (ms) | query p99 (ms) | recall@10 |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        build = "—" if row["build"] is None else f"{row['build']:.1f}"
        lines.append(
            f"| {row['n']:,} | {row['engine']} | {build} | {row['p50']:.3f} | {row['p99']:.3f} | {row['recall']:.3f} |"
        )
    lines += [
        "",
        "The embedded store's build time includes writing every vector durably to SQLite "
        "(`synchronous=FULL`, batches of 10,000) and the metadata; FAISS builds in memory only.",
        "",
        f"Real text ({text['n']:,.0f} generated sentences of ~{text['tokens']:.0f} word pieces), local embedder "
        f"all-MiniLM-L6-v2 on onnxruntime: **int8 (the default) {text['batch_rate']:,.0f} sentences/s** in "
        f"batches, {text['single_rate']:,.0f}/s one at a time (first load, building the model: "
        f"{text['load']:.1f} s); fp32 {text['fp32_batch_rate']:,.0f}/s in batches, "
        f"{text['fp32_single_rate']:,.0f}/s one at a time. Embedded store with HNSW forced on, int8 vectors: "
        f"recall@10 {text['recall']:.3f}.",
        "",
        f"`store_experience` end to end (validate, database row on SQLite, embed one new text, durable "
        f"upsert; default settings): p50 {text['store_p50']:.1f} ms, **p95 {text['store_p95']:.1f} ms**.",
        "",
        goals_line(rows, text),
        MARK_END,
    ]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    doc = REPO / "docs" / "benchmarks.md"
    content = doc.read_text()
    if MARK_START in content and MARK_END in content:
        before, rest = content.split(MARK_START, 1)
        _, after = rest.split(MARK_END, 1)
        content = before + section + after
    else:
        content = content.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    began = time.perf_counter()
    text = bench_text(args.texts)
    print(text, flush=True)
    rows: list[dict[str, object]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += bench_size(size, args.queries)
    section = render(rows, text, time.perf_counter() - began)
    print(section)
    if not args.no_write:
        write_doc(section)


if __name__ == "__main__":
    main()
