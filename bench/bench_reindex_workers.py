"""Distributed re-embedding: a full reindex job on 1 Celery worker beside 2 (issue 17, item 5).

    nice -n 15 .venv/bin/python bench/bench_reindex_workers.py [--rounds 1] [--chunk-size 200]

Needs bench_api.py's database (BENCH_API_DB, default atlas_api_bench: seed_demo 3,000 images
and its model; run bench_api.py or bench_api_cpu.py once first). This script copies it into
its own database (<db>_reindex) so the API bench's index is left alone, and reads the same
media files. Per round and worker count: the vectors of the first --images images are deleted
(a model change for those, as far as the work goes), N workers start (`celery worker -Q indexing -c 1`, one torch thread
each, niced), `reindex --distributed --chunk-size C` queues the job, and the wall time from
the job row's creation to its success is measured (chunks embedded, then the merge's index
build; the command's own start-up is left out).
Worker counts alternate within a round (1, 2). Redis database 8 is the broker (flushed).
Prints a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_api  # noqa: E402

ROOT = bench_api.ROOT
BROKER = os.environ.get("BENCH_REINDEX_BROKER", "redis://127.0.0.1:6379/8")
DB = bench_api.DB + "_reindex"


def env() -> dict[str, str]:
    return {
        **bench_api.env(),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "CELERY_BROKER_URL": BROKER,
        "SEARCH_INDEX_DIR": str(bench_api.VAR / "reindex-bench-index"),
        "MEDIA_ROOT": str(bench_api.VAR / "media"),
        "SEARCH_TORCH_THREADS": "1",
        "LOG_LEVEL": "INFO",
    }


def psql(sql: str, db: str = DB) -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tA", "-c", sql, db], check=True, text=True,
                          capture_output=True).stdout.strip()


def copy_database() -> None:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    # pg_dump rather than a template copy: the API bench may hold connections to its database.
    subprocess.run(f"pg_dump -h 127.0.0.1 -U postgres {bench_api.DB} | psql -q -h 127.0.0.1 -U postgres {DB}",
                   shell=True, check=True, stdout=subprocess.DEVNULL)


def start_workers(count: int, log_dir: Path) -> list[tuple[subprocess.Popen, Path]]:
    workers = []
    for n in range(count):
        log = log_dir / f"worker-{count}-{n}.log"
        log.unlink(missing_ok=True)
        command = ["nice", "-n", "15", bench_api.PY, "-m", "celery", "-A", "atlas", "worker", "-Q", "indexing", "-c", "1",
                   "--prefetch-multiplier", "1", "-n", f"bench{n}@%h", "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
        with open(log, "ab") as out:
            process = subprocess.Popen(command, cwd=ROOT, env=env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        workers.append((process, log))
    deadline = time.monotonic() + 1800  # a busy machine: torch's import alone can take minutes
    while not all(" ready." in log.read_text(errors="replace") for _, log in workers):
        if time.monotonic() > deadline:
            stop(workers)
            raise SystemExit("workers did not start")
        time.sleep(0.5)
    return workers


def stop(workers) -> None:
    for process, _ in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process, _ in workers:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def one_run(count: int, chunk_size: int, images: int, log_dir: Path) -> dict:
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    # The vectors of the first `images` images go: the job re-embeds exactly those.
    psql(f"DELETE FROM search_imageembedding WHERE image_id IN (SELECT id FROM atlas_image ORDER BY id LIMIT {images})")
    workers = start_workers(count, log_dir)
    load = os.getloadavg()[0]
    try:
        started = time.monotonic()
        out = subprocess.run([bench_api.PY, "manage.py", "reindex", "--distributed", "--chunk-size", str(chunk_size)],
                             cwd=ROOT, env=env(), check=True, text=True, capture_output=True).stdout
        job = int(re.search(r"reindex job (\d+)", out).group(1))
        while (status := psql(f"SELECT status FROM search_reindexjob WHERE id = {job}")) not in ("succeeded", "failed"):
            time.sleep(0.5)
        command_seconds = time.monotonic() - started
        # From the job's row: created (chunks queued) -> finished (index published); the
        # command's own start-up (imports, loading the model for its version) is left out.
        seconds = float(psql(f"SELECT EXTRACT(EPOCH FROM finished_at - created_at) FROM search_reindexjob WHERE id = {job}"))
    finally:
        stop(workers)
    images = int(psql(f"SELECT image_count FROM search_reindexjob WHERE id = {job}"))
    per_worker = psql(f"SELECT worker, COUNT(*) FROM search_reindexchunk WHERE job_id = {job} GROUP BY worker ORDER BY worker")
    merge = psql(f"SELECT b.index_seconds FROM search_indexbuild b JOIN search_reindexjob j ON j.build_id = b.id WHERE j.id = {job}")
    return {"workers": count, "job": job, "status": status, "images": images, "seconds": seconds,
            "images_per_s": images / seconds, "command_seconds": command_seconds, "chunks_by_worker": per_worker.replace("\n", "; "),
            "merge_index_seconds": float(merge or "nan"), "load_before": load, "load_after": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--images", type=int, default=1000, help="how many images lose their vector and are re-embedded")
    parser.add_argument("--reuse", action="store_true", help="keep the copied database of a previous run")
    args = parser.parse_args()
    if not args.reuse:
        copy_database()
    log_dir = bench_api.VAR / "reindex-bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for round_number in range(args.rounds):
        for count in (1, 2):
            result = one_run(count, args.chunk_size, args.images, log_dir)
            print(f"round {round_number + 1}: {result}", file=sys.stderr)
            runs.append(result)
    one = statistics.median(r["seconds"] for r in runs if r["workers"] == 1)
    print(f"\n{runs[0]['images']} images, chunks of {args.chunk_size}, {args.rounds} round(s), medians; "
          f"cores: {os.cpu_count()}\n")
    print("| workers | wall s (job row created -> index published) | images/s | speed-up vs 1 | merge (index build) s | load avg before / after |")
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    for count in (1, 2):
        mine = [r for r in runs if r["workers"] == count]
        seconds = statistics.median(r["seconds"] for r in mine)
        loads = ", ".join(f"{r['load_before']:.1f} / {r['load_after']:.1f}" for r in mine)
        merge = statistics.median(r["merge_index_seconds"] for r in mine)
        print(f"| {count} | {seconds:.1f} | {mine[0]['images'] / seconds:.1f} | {one / seconds:.2f}x | {merge:.2f} | {loads} |")
    print("\n" + json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
