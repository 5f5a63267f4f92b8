"""Index layouts: recall@10, latency, memory and build time, each against exact search in the same run.

    nice -n 15 .venv/bin/python bench/bench_index.py --size 1000000 --json var/bench-index/1m.json
    nice -n 15 .venv/bin/python bench/bench_index.py --size 10000000 --layouts exact ivf-sq8 --json var/bench-index/10m.json

Vectors: clustered, shaped like image embeddings (bench/index_data.py: n/100 overlapping
clusters with a power-law spectrum; nearest-neighbour cosine ~0.85), dim 128 by default (the
shipped model, atlas-clip-rn). Queries are fresh draws, never in the index; the truth is the
exact top-10. Vectors, truth and built index files are cached under var/bench-index (built
once; --rebuild builds again), so a second run only measures queries.

Layouts (every one but hnsw is search/index.py's VectorIndex, the code the service runs):
  exact     flat: exact inner products over all vectors (the baseline)
  hnsw      FAISS IndexHNSWFlat M=32, efConstruction 40, swept over efSearch (no remove_ids)
  ivf-flat  IVF, HNSW coarse quantizer, float32 lists, no re-ranking
  ivf-sq8   IVF, HNSW coarse quantizer, 8-bit scalar codes, k*4 candidates re-ranked exactly
  ivf-pq32  IVF, HNSW coarse quantizer, 32-byte product codes, k*8 candidates re-ranked exactly
Latency: one query per call on one FAISS thread (what a web request does), index memory-mapped
from its file as the web processes open it. Memory: bytes of the file a host maps once (FAISS
part and the float32 vectors used for re-ranking and exact filtered search).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_data import dataset, recall_at_10  # noqa: E402

from search.index import IndexSpec, VectorIndex, choose_spec  # noqa: E402

LAYOUTS = ["exact", "hnsw", "ivf-flat", "ivf-sq8", "ivf-pq32"]


def spec_for(layout: str, n: int) -> IndexSpec:
    if layout == "exact":
        return IndexSpec("flat")
    base = choose_spec(n, flat_max=0)
    return {
        "ivf-flat": replace(base, codes="Flat", rerank=0),
        "ivf-sq8": replace(base, codes="SQ8", rerank=4),
        "ivf-pq32": replace(base, codes="PQ32", rerank=8),
    }[layout]


def latency_ms(fn, items) -> tuple[float, float, float]:
    """Wall p50, wall p99 and the median CPU milliseconds per call (this thread's CPU time: on a
    shared machine the wall times carry every wait for a core, the CPU time does not)."""
    times, cpu = [], []
    for item in items:
        started, started_cpu = time.perf_counter(), time.thread_time()
        fn(item)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99)), float(np.median(cpu))


def built(layout: str, vectors: np.ndarray, ids: np.ndarray, path: Path, rebuild: bool, log) -> dict:
    """Build the layout's file once (another bench process building it is waited for)."""
    import fcntl

    meta_path = path.with_suffix(".json")
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() and meta_path.exists() and not rebuild:
            return json.loads(meta_path.read_text())
        return _build(layout, vectors, ids, path, meta_path, log)


def _build(layout: str, vectors: np.ndarray, ids: np.ndarray, path: Path, meta_path: Path, log) -> dict:
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    if layout == "hnsw":
        index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        for start in range(0, len(vectors), 500_000):
            index.add(np.ascontiguousarray(vectors[start : start + 500_000]))
        build_s = time.perf_counter() - started
        faiss.write_index(index, str(path))
        shared = {}
    else:
        spec = spec_for(layout, len(ids))
        centroids, shared = _sibling_centroids(layout, spec, path)
        if centroids is None:
            index = VectorIndex.build(ids, np.asarray(vectors), spec=spec)
        else:
            # The same k-means (same sample, seed and lists) as a sibling IVF file: reuse its
            # centroids instead of running it again (the table says so; the sibling's build
            # time includes the k-means).
            index = VectorIndex.empty(vectors.shape[1], spec)
            faiss.downcast_index(index._ivf.quantizer).add(centroids)
            rows = np.sort(np.random.default_rng(0).choice(len(ids), size=min(len(ids), 32 * spec.nlist), replace=False))
            index._ivf.train(np.ascontiguousarray(vectors[rows]))
            index.add(ids, np.asarray(vectors))
        build_s = time.perf_counter() - started + shared.get("kmeans_s", 0.0)
        index.save(path)
    meta = {"build_s": build_s, "save_s": time.perf_counter() - started - build_s + shared.get("kmeans_s", 0.0),
            "file_bytes": path.stat().st_size, **shared}
    meta_path.write_text(json.dumps(meta))
    log(f"  built {layout} in {build_s:.0f} s ({meta['file_bytes'] / 2**20:.0f} MB)")
    return meta


def _sibling_centroids(layout: str, spec: IndexSpec, path: Path):
    """Centroids of an already built IVF file of the same size and lists, and its k-means time."""
    for sibling in ("ivf-sq8", "ivf-pq32", "ivf-flat"):
        other = path.with_name(path.name.replace(layout, sibling, 1))
        meta = other.with_suffix(".json")
        if sibling == layout or not meta.exists():
            continue
        index = VectorIndex.load(other)
        if index.spec.nlist != spec.nlist:
            continue
        quantizer = faiss.downcast_index(index._ivf.quantizer)
        centroids = faiss.downcast_index(quantizer.storage).reconstruct_n(0, spec.nlist)
        kmeans = json.loads(meta.read_text()).get("kmeans_s", 0.0)  # unknown when the sibling was built whole
        return centroids, {"kmeans_s": kmeans, "centroids_from": sibling}
    return None, {}


def measure(layout: str, args, vectors, queries, truth, log) -> dict:
    n, dim = vectors.shape
    ids = np.arange(1, n + 1, dtype=np.int64)
    path = Path(args.cache) / f"{layout}-n{n}-d{dim}.idx"
    meta = built(layout, vectors, ids, path, args.rebuild, log)
    row = {"layout": layout, "n": n, **meta}
    faiss.omp_set_num_threads(1)
    lat_q = queries[: args.latency_queries]
    if layout == "hnsw":
        started = time.perf_counter()
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        row["load_s"] = time.perf_counter() - started
        row["faiss_mb"], row["vectors_mb"] = path.stat().st_size / 2**20, 0.0
        row["recall"] = {}
        for ef in args.efs:
            index.hnsw.efSearch = ef
            row["recall"][ef] = recall_at_10(index.search(queries, 10)[1] + 1, truth)
        row["param"] = ef = next((e for e in args.efs if row["recall"][e] >= args.target), args.efs[-1])
        index.hnsw.efSearch = ef
        row["ms"] = latency_ms(lambda q: index.search(q[None, :], 10), lat_q)
        row["remove_ids"] = False
        return row
    started = time.perf_counter()
    index = VectorIndex.load(path)  # memory-mapped, CRCs checked: what a web process does
    row["load_s"] = time.perf_counter() - started
    sections = json.loads(_manifest(path))["sections"]
    row["faiss_mb"] = sections["faiss"]["length"] / 2**20
    row["vectors_mb"] = (sections["vectors"]["length"] + sections["ids"]["length"]) / 2**20
    row["remove_ids"] = True
    if layout == "exact":
        row["recall"], row["param"] = {0: 1.0}, 0
        few = lat_q[: args.exact_queries]
        row["ms"] = latency_ms(lambda q: index.search(q, 10), few)
    else:
        row["recall"] = {}
        for nprobe in args.nprobes:
            found = np.concatenate([index.search_many(queries[i : i + 100], 10, nprobe=nprobe)[1] for i in range(0, len(queries), 100)])
            row["recall"][nprobe] = recall_at_10(found, truth)
            log(f"  {layout} nprobe {nprobe}: recall@10 {row['recall'][nprobe]:.3f}")
        row["param"] = nprobe = next((p for p in args.nprobes if row["recall"][p] >= args.target), args.nprobes[-1])
        tuned = index.with_nprobe(nprobe)
        row["ms"] = latency_ms(lambda q: tuned.search(q, 10), lat_q)
        rng = np.random.default_rng(1)
        for share in (0.01, 0.3):
            allowed = np.sort(rng.choice(ids, size=int(n * share), replace=False))
            hits = [tuned.search(q, 10, allowed_ids=allowed) for q in lat_q[:50]]
            row[f"filter_{share}_complete"] = float(np.mean([len(h) == 10 and {i for i, _ in h} <= set(allowed.tolist()) for h in hits[:10]]))
            row[f"filter_{share}_ms"] = latency_ms(lambda q, a=allowed: tuned.search(q, 10, allowed_ids=a), lat_q[:50])
    log(f"  {layout}: CPU {row['ms'][2]:.2f} ms per query, wall p50/p99 {row['ms'][0]:.2f}/{row['ms'][1]:.2f} ms at param {row['param']}")
    if args.incremental and layout != "exact":
        # 1% new vectors: load a private copy, add, save (what `reindex` does) against the full build.
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        rng = np.random.default_rng(2)
        new = max(1, n // 100)
        extra = np.asarray(vectors[rng.choice(n, size=new, replace=False)]) + 0.05 * rng.standard_normal((new, dim), dtype=np.float32)
        started = time.perf_counter()
        live = VectorIndex.load(path, mmap=False)
        live.add(np.arange(n + 1, n + new + 1, dtype=np.int64), extra)
        live.save(path.with_suffix(".incr"))
        row["incremental_s"] = time.perf_counter() - started
        path.with_suffix(".incr").unlink()
        del live
        faiss.omp_set_num_threads(1)
    return row


def _manifest(path: Path) -> bytes:
    import struct

    with open(path, "rb") as handle:
        handle.seek(-32, os.SEEK_END)
        _, _, _, offset, length = struct.unpack("<8sIIQQ", handle.read(32))
        handle.seek(offset)
        return handle.read(length)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=LAYOUTS)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--exact-queries", type=int, default=50, help="exact search is slow at 10M: fewer queries")
    parser.add_argument("--nprobes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--efs", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--target", type=float, default=0.95, help="recall@10 the latency is measured at")
    parser.add_argument("--incremental", action="store_true", help="also time adding 1%% new vectors")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--cache", default=str(Path(__file__).resolve().parent.parent / "var" / "bench-index"))
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    def log(text: str) -> None:
        print(text, flush=True)

    load = os.getloadavg()
    log(f"faiss {faiss.__version__}, {os.cpu_count()} CPUs shared with other jobs; load average {load[0]:.1f}")
    vectors, queries, truth = dataset(args.size, args.dim, queries=args.queries, cache=args.cache, log=log)
    rows = []
    for layout in args.layouts:
        log(f"== {layout} ==")
        rows.append(measure(layout, args, vectors, queries, truth, log))
    exact = next((r for r in rows if r["layout"] == "exact"), None)
    log(f"\n{args.size:,} x {args.dim} clustered vectors; load average {load[0]:.1f} -> {os.getloadavg()[0]:.1f}\n")
    log("| layout | param | recall@10 | CPU ms per query (median) | vs exact (CPU) | wall p50 / p99 ms | FAISS part MB | re-rank vectors + ids MB | build s (wall) | 1% / 30% filter CPU ms (k returned) | adding 1% s (wall) |")
    log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        param = {"exact": "-", "hnsw": f"efSearch {r['param']}"}.get(r["layout"], f"nprobe {r['param']}")
        speed = f"{exact['ms'][2] / r['ms'][2]:.0f}x" if exact else "-"
        filt = (f"{r['filter_0.01_ms'][2]:.2f} ({r['filter_0.01_complete']:.0%}) / {r['filter_0.3_ms'][2]:.2f} ({r['filter_0.3_complete']:.0%})"
                if "filter_0.01_ms" in r else "-")
        log(f"| {r['layout']} | {param} | {r['recall'][r['param']]:.3f} | {r['ms'][2]:.2f} | {speed} | {r['ms'][0]:.2f} / {r['ms'][1]:.2f} | "
            f"{r['faiss_mb']:.0f} | {r['vectors_mb']:.0f} | {r['build_s']:.0f}{' + k-means of ' + r['centroids_from'] if r.get('centroids_from') else ''} | {filt} | {r.get('incremental_s', float('nan')):.1f} |")
    log("\nrecall@10 by nprobe (efSearch for hnsw): " + json.dumps({r["layout"]: r["recall"] for r in rows}))
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "dim": args.dim, "load": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
