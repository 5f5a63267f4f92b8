"""CPU per search in a web process with OpenBLAS on its default threads beside one thread, one run.

    .venv/bin/python bench/bench_blas_threads.py [--requests 200] [--rounds 3] [--no-django]

Why: one process answering one request at a time used more CPU than wall time (docs/benchmarks.md,
"Search at 1 M: the database share"): a thread besides the request's own was busy. numpy's
OpenBLAS starts one thread per core and its idle threads spin for a while after each matrix
product (the exact re-ranking of IVF candidates is one), which on a host whose cores are shared
by several web workers is CPU taken from the others' requests.

Two workloads, each in a fresh subprocess per variant (OPENBLAS_NUM_THREADS is read when numpy
loads), variants alternating per round so a change in load hits both:

- `rerank`: the shapes of one query's re-ranking at 1 M (gather 2,048 of 200,000 stored 512-d
  float32 rows, one matrix-vector product, argsort), with 20 ms of idle between calls as a
  request's database waits and Python work would leave;
- `search` (skipped with --no-django): `GET /api/v1/search/?q=...` through the Django test client
  on the configured catalogue and published index (ATLAS_VAR_DIR, DATABASE_URL as for the
  service), ten rotating queries.

Reports CPU ms (every thread of the process, `time.process_time`) and wall ms per call, medians
over rounds, as a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
VARIANTS = {"default": None, "one thread": "1"}
QUERIES = [
    "melanoma on dark skin", "itchy red rash", "psoriasis", "a brown spot on the cheek", "ringworm on the arm",
    "white patches on skin", "vitiligo type v", "a mole that changed shape", "eczema on very dark skin", "acne",
]  # fmt: skip

RERANK = """
import json, time
import numpy as np
rng = np.random.default_rng(0)
stored = rng.standard_normal((200_000, 512), dtype=np.float32)
query = rng.standard_normal(512, dtype=np.float32)
def one(seed):
    rows = np.sort(np.random.default_rng(seed).choice(len(stored), 2048, replace=False))
    scores = stored[rows] @ query
    return np.argsort(-scores, kind="stable")[:20]
for i in range(10):
    one(i)
wall = 0.0
c = time.process_time()  # the idle gaps count: that is where spinning threads burn CPU
for i in range(REQUESTS):
    w = time.perf_counter()
    one(i)
    wall += time.perf_counter() - w
    time.sleep(0.02)
cpu = time.process_time() - c
print("RESULT" + json.dumps({"cpu_ms": cpu / REQUESTS * 1000, "wall_ms": wall / REQUESTS * 1000}))
"""

SEARCH = """
import json, time
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
urls = ["/api/v1/search/?k=20&q=" + q.replace(" ", "+") for q in QUERIES]
for url in urls:
    assert client.get(url).status_code == 200, url  # warm: model, index, vocabulary
wall = 0.0
c = time.process_time()
for i in range(REQUESTS):
    w = time.perf_counter()
    client.get(urls[i % len(urls)])
    wall += time.perf_counter() - w
    time.sleep(0.02)
cpu = time.process_time() - c
print("RESULT" + json.dumps({"cpu_ms": cpu / REQUESTS * 1000, "wall_ms": wall / REQUESTS * 1000}))
"""


def run(workload: str, threads: str | None, requests: int) -> dict:
    env = {**os.environ}
    env.pop("OPENBLAS_NUM_THREADS", None)
    if threads:
        env["OPENBLAS_NUM_THREADS"] = threads
    head = f"REQUESTS = {requests}\nQUERIES = {QUERIES!r}\n"
    if workload == "rerank":
        cmd = [PY, "-c", head + RERANK]
    else:
        env.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")
        env.setdefault("API_THROTTLE_ANON_BURST", "100000000/min")
        env.setdefault("API_THROTTLE_ANON_SUSTAINED", "100000000/min")
        cmd = [PY, "manage.py", "shell", "-c", head + SEARCH]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, text=True, capture_output=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[6:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-django", action="store_true", help="only the re-ranking workload")
    args = parser.parse_args()
    workloads = ["rerank"] + ([] if args.no_django else ["search"])
    runs: dict[tuple[str, str], list[dict]] = {(w, v): [] for w in workloads for v in VARIANTS}
    for _ in range(args.rounds):
        for workload in workloads:
            for name, threads in VARIANTS.items():
                runs[(workload, name)].append(run(workload, threads, args.requests))
    print(f"cores: {os.cpu_count()}, load average before the last round: {os.getloadavg()[0]:.1f}")
    print("| workload | OpenBLAS threads | CPU ms per call | wall ms per call | CPU default / one thread |")
    print("| --- | --- | ---: | ---: | ---: |")
    summary = {}
    for workload in workloads:
        cpu = {name: statistics.median(r["cpu_ms"] for r in runs[(workload, name)]) for name in VARIANTS}
        for name in VARIANTS:
            wall = statistics.median(r["wall_ms"] for r in runs[(workload, name)])
            ratio = f"{cpu['default'] / cpu['one thread']:.2f}x" if name == "one thread" else ""
            print(f"| {workload} | {name} | {cpu[name]:.2f} | {wall:.2f} | {ratio} |")
            summary[f"{workload}/{name}"] = {"cpu_ms": round(cpu[name], 3), "wall_ms": round(wall, 3),
                                             "runs": runs[(workload, name)]}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
