"""Vectors for the index benches: clustered, shaped like image embeddings, cached on disk.

Django-free. `dataset(n, dim, ...)` returns (vectors, queries, truth) where vectors is a
read-only memory map of an .npy file under the cache directory (var/bench-index by default),
generated once in chunks of 1M (so 10M x 128 never needs 2 copies in memory), queries are
fresh draws from the same clusters (never in the index), and truth is the exact top-100 by
inner product, computed chunk by chunk. Ids are row + 1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import faiss
import numpy as np

CHUNK = 1_000_000
ROOT = Path(__file__).resolve().parent.parent


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def clustered_vectors(
    n: int, dim: int, rng: np.random.Generator, *, centres: np.ndarray | None = None, spread: tuple[float, float] = (0.5, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Anisotropic clusters: a power-law spectrum (variance of axis i ~ 1/(i+1)) and a shared
    mean direction, as in real CLIP embeddings, so clusters overlap and IVF lists cut through them.
    Noise (0.5, 1.0) of the centres' spread gives mean pairwise cosine ~0.3 and nearest-neighbour
    cosine ~0.85, like image embeddings of a photo collection."""
    scale = (1.0 / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)
    if centres is None:
        mean = rng.standard_normal(dim).astype(np.float32) * scale
        centres = mean + rng.standard_normal((max(10, n // 100), dim), dtype=np.float32) * scale
    parents = rng.integers(0, len(centres), n)
    width = rng.uniform(*spread, size=(n, 1)).astype(np.float32)
    noise = rng.standard_normal((n, dim), dtype=np.float32)
    noise *= scale
    return normalise(centres[parents] + width * noise), centres


def dataset(n: int, dim: int, *, queries: int = 500, seed: int = 0, cache: Path | None = None, log=print):
    cache = Path(cache or ROOT / "var" / "bench-index")
    cache.mkdir(parents=True, exist_ok=True)
    stem = cache / f"clustered-n{n}-d{dim}-s{seed}"
    vec_path, q_path, t_path = Path(f"{stem}.npy"), Path(f"{stem}.queries.npy"), Path(f"{stem}.truth.npy")
    done = Path(f"{stem}.json")
    if not done.exists():
        started = time.perf_counter()
        rng = np.random.default_rng(seed)
        # The clusters' centres are drawn once for the whole collection (n/100 of them).
        scale = (1.0 / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)
        mean = rng.standard_normal(dim).astype(np.float32) * scale
        centres = mean + rng.standard_normal((max(10, n // 100), dim), dtype=np.float32) * scale
        out = np.lib.format.open_memmap(vec_path, mode="w+", dtype=np.float32, shape=(n, dim))
        for start in range(0, n, CHUNK):
            out[start : start + CHUNK] = clustered_vectors(min(CHUNK, n - start), dim, rng, centres=centres)[0]
        out.flush()
        del out
        np.save(q_path, clustered_vectors(queries, dim, rng, centres=centres)[0])
        np.save(t_path, exact_top(np.load(vec_path, mmap_mode="r"), np.load(q_path), 100))
        done.write_text(json.dumps({"n": n, "dim": dim, "seed": seed, "seconds": time.perf_counter() - started}))
        log(f"generated {n:,} x {dim} clustered vectors and exact top-100 in {time.perf_counter() - started:.0f} s -> {vec_path}")
    return np.load(vec_path, mmap_mode="r"), np.load(q_path), np.load(t_path)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids (row + 1) by inner product, one chunk of the collection at a time."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), CHUNK):
        chunk = np.ascontiguousarray(vectors[start : start + CHUNK])
        s, i = faiss.knn(queries, chunk, k, metric=faiss.METRIC_INNER_PRODUCT)
        s_all = np.concatenate([best_s, s], axis=1)
        i_all = np.concatenate([best_i, i + start + 1], axis=1)
        order = np.argsort(-s_all, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s_all, order, 1), np.take_along_axis(i_all, order, 1)
    return best_i


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:10].tolist()) & set(t[:10].tolist())) / 10 for f, t in zip(found, truth, strict=True)]))
