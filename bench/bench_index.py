"""Index benchmark: recall@10 against exact search and single-query latency, chosen index vs Flat.

    nice .venv/bin/python bench/bench_index.py                      # 10k, 100k, 1M; clustered vectors
    ATLAS_VAR_DIR=/tmp/atlas-search nice .venv/bin/python bench/bench_index.py --vectors demo

Vectors (dim 512 by default), L2-normalised:
  clustered: n/100 Gaussian clusters around a shared mean with a power-law spectrum (axis i
             has variance ~1/(i+1), as real CLIP embeddings do), so clusters overlap the way
             an embedding space's neighbourhoods do; not uniform noise.
  demo:      the stored embeddings of the demo atlas (current model version) lifted to 512-d by
             a random orthogonal map, then each synthetic vector = a random real embedding +
             Gaussian noise (cos to its parent ~0.8). Needs Django and an embedded demo atlas.
Queries are fresh draws from the same distribution (never vectors in the index).

Every figure for the chosen index is printed beside Flat's from the same run, so load from
other jobs on the machine (it is shared) affects both. Latency = one query per call, one
FAISS thread (what one web request does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.index import IndexSpec, VectorIndex, choose_spec, normalise  # noqa: E402


def clustered_vectors(
    n: int, dim: int, rng: np.random.Generator, *, centres: np.ndarray | None = None, spread: tuple[float, float] = (0.5, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Anisotropic clusters: a power-law spectrum (variance of axis i ~ 1/(i+1)) and a shared
    mean direction, as in real CLIP embeddings, so clusters overlap and IVF lists cut through them."""
    scale = (1.0 / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)
    if centres is None:
        mean = rng.standard_normal(dim).astype(np.float32) * scale
        centres = mean + rng.standard_normal((max(10, n // 100), dim), dtype=np.float32) * scale
    parents = rng.integers(0, len(centres), n)
    # Noise relative to the spread of the centres; (0.5, 1.0) gives mean pairwise cosine ~0.3 and
    # nearest-neighbour cosine ~0.85, like image embeddings of a photo collection.
    width = rng.uniform(*spread, size=(n, 1)).astype(np.float32)
    noise = rng.standard_normal((n, dim), dtype=np.float32)
    noise *= scale
    return normalise(centres[parents] + width * noise), centres


def demo_vectors(n: int, dim: int, rng: np.random.Generator, *, base: np.ndarray) -> np.ndarray:
    parents = rng.integers(0, len(base), n)
    noise = rng.standard_normal((n, dim), dtype=np.float32) / np.sqrt(dim)
    return normalise(base[parents] + 0.75 * noise)


def load_demo_base(dim: int, rng: np.random.Generator) -> np.ndarray:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")
    import django

    django.setup()
    from search.indexing import encoder_get, stored_vectors

    _, vectors = stored_vectors(encoder_get().version)
    if len(vectors) == 0:
        raise SystemExit("no stored embeddings: run seed_demo, train_clip and reindex first")
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, vectors.shape[1])))  # orthonormal columns
    return normalise(vectors @ rotation.T.astype(np.float32))


def latency_ms(search_one, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        search_one(query[None, :])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found[:, :10], truth[:, :10], strict=True)]))


def run_size(n: int, args, rng: np.random.Generator, base: np.ndarray | None) -> dict:
    print(f"\n== {n:,} vectors of dim {args.dim} ({args.vectors}) ==", flush=True)
    if args.vectors == "demo":
        data = demo_vectors(n, args.dim, rng, base=base)
        queries = demo_vectors(args.queries, args.dim, rng, base=base)
        centres = None
    else:
        data, centres = clustered_vectors(n, args.dim, rng, spread=tuple(args.spread))
        queries, _ = clustered_vectors(args.queries, args.dim, rng, centres=centres, spread=tuple(args.spread))
    ids = np.arange(1, n + 1, dtype=np.int64)
    faiss.omp_set_num_threads(args.threads)

    started = time.perf_counter()
    flat = VectorIndex.build(ids, data, spec=IndexSpec("flat"))
    flat_build = time.perf_counter() - started
    _, truth = flat.search_many(queries, 10)

    spec = choose_spec(n, flat_max=args.flat_max)
    ivf_spec = spec if spec.kind == "ivf" else choose_spec(n, flat_max=0)  # IVF measured at every size
    started = time.perf_counter()
    ivf = VectorIndex.build(ids, data, spec=ivf_spec)
    ivf_build = time.perf_counter() - started

    row = {"n": n, "chosen": spec.kind, "nlist": ivf_spec.nlist, "flat_build_s": flat_build, "ivf_build_s": ivf_build, "recall": {}}
    row["nprobe"] = nprobe_used = args.nprobe or ivf.spec.nprobe
    for nprobe in sorted(set(args.nprobes) | {nprobe_used}):
        _, found = ivf.search_many(queries, 10, nprobe=nprobe)
        row["recall"][nprobe] = recall_at_10(found, truth)
    print(f"build: flat {flat_build:.1f}s, ivf{ivf_spec.nlist} {ivf_build:.1f}s; recall@10 by nprobe: "
          + ", ".join(f"{p}: {r:.3f}" for p, r in row["recall"].items()), flush=True)

    faiss.omp_set_num_threads(1)
    lat = queries[: args.latency_queries]
    row["flat_ms"] = latency_ms(lambda q: flat.search_many(q, 10), lat)
    row["ivf_ms"] = latency_ms(lambda q: ivf.search_many(q, 10, nprobe=nprobe_used), lat)
    # A filter keeping 1% of the collection, applied inside FAISS (IDSelectorBatch).
    allowed = rng.choice(ids, size=max(10, n // 100), replace=False)
    row["flat_filtered_ms"] = latency_ms(lambda q: flat.search(q[0], 10, allowed_ids=allowed), lat[:50])
    row["ivf_filtered_ms"] = latency_ms(lambda q: ivf.search(q[0], 10, allowed_ids=allowed), lat[:50])
    complete = [len(ivf.search(q, 10, allowed_ids=allowed)) == 10 for q in lat[:50]]
    row["ivf_filtered_complete"] = float(np.mean(complete))
    print(f"p50/p99 ms (1 thread): flat {row['flat_ms'][0]:.2f}/{row['flat_ms'][1]:.2f}, "
          f"ivf nprobe {nprobe_used} {row['ivf_ms'][0]:.2f}/{row['ivf_ms'][1]:.2f}; "
          f"1% filter: flat {row['flat_filtered_ms'][0]:.2f}, ivf {row['ivf_filtered_ms'][0]:.2f} "
          f"(k results returned {row['ivf_filtered_complete']:.0%})", flush=True)

    # Incremental update (1% new vectors: load, add, save) against a full rebuild (build, save).
    faiss.omp_set_num_threads(args.threads)
    new = max(1, n // 100)
    extra = demo_vectors(new, args.dim, rng, base=base) if args.vectors == "demo" else clustered_vectors(new, args.dim, rng, centres=centres, spread=tuple(args.spread))[0]
    path = Path(args.tmp) / f"bench-{n}.faiss"
    chosen = ivf if spec.kind == "ivf" else flat
    chosen.save(path)
    started = time.perf_counter()
    live = VectorIndex.load(path, nprobe=nprobe_used)
    live.add(np.arange(n + 1, n + new + 1, dtype=np.int64), extra)
    live.save(path)
    row["incremental_s"] = time.perf_counter() - started
    # A full rebuild = build from all vectors (timed above; 1% more vectors changes it little) + save.
    started = time.perf_counter()
    chosen.save(path)
    row["full_rebuild_s"] = (ivf_build if spec.kind == "ivf" else flat_build) + time.perf_counter() - started
    path.unlink(missing_ok=True)
    print(f"1% new vectors: incremental {row['incremental_s']:.2f}s vs full rebuild {row['full_rebuild_s']:.2f}s ({spec.kind})", flush=True)
    del flat, ivf, live, data
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--vectors", choices=["clustered", "demo"], default="clustered")
    parser.add_argument("--spread", type=float, nargs=2, default=[0.5, 1.0], help="clustered: noise width range (larger = harder)")
    parser.add_argument("--queries", type=int, default=500, help="queries for recall")
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--nprobes", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    parser.add_argument("--nprobe", type=int, default=0, help="nprobe for the latency figures (0 = the index's auto_nprobe)")
    parser.add_argument("--flat-max", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=2, help="FAISS threads for builds and recall batches")
    parser.add_argument("--tmp", default="/tmp")
    parser.add_argument("--json", default="", help="also write the rows to this file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    base = load_demo_base(args.dim, rng) if args.vectors == "demo" else None
    print(f"faiss {faiss.__version__}, {os.cpu_count()} CPUs (shared with other jobs)")
    rows = [run_size(n, args, rng, base) for n in args.sizes]
    print(f"\n| vectors | chosen | IVF lists | IVF nprobe | IVF recall@10 | Flat p50 / p99 ms | IVF p50 / p99 ms | IVF speed-up (p50) | 1% filter p50 ms Flat / IVF | 1% new: incremental / full rebuild s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['n']:,} | {r['chosen']} | {r['nlist']} | {r['nprobe']} | {r['recall'][r['nprobe']]:.3f} | "
            f"{r['flat_ms'][0]:.2f} / {r['flat_ms'][1]:.2f} | {r['ivf_ms'][0]:.2f} / {r['ivf_ms'][1]:.2f} | "
            f"{r['flat_ms'][0] / r['ivf_ms'][0]:.1f}x | {r['flat_filtered_ms'][0]:.2f} / {r['ivf_filtered_ms'][0]:.2f} | "
            f"{r['incremental_s']:.2f} / {r['full_rebuild_s']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
