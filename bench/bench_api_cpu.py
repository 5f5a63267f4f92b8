"""CPU per API request, before and after the values-based list and plain search answer (issue 17).

    .venv/bin/python bench/bench_api_cpu.py [--reuse] [--repeats 40] [--rounds 5]

Uses bench_api.py's set-up (its own PostgreSQL database and var dir: seed_demo 3,000 images,
a random-initialised atlas-clip-tiny, reindex, ANALYZE; BENCH_API_DB / BENCH_API_VAR choose
them). One Django process, the test client through the whole middleware stack, an API token
on every request; CPU time (time.process_time) per request, which is what a request costs a
core whatever else runs on the machine. The old answers are served by the serializer-based
views kept for this comparison (atlas.api.views.SerializerImageListView / SerializerSearchView,
DRF's JSON renderer), routed here under /api/v1/legacy/...; each round measures every
endpoint old and new, interleaved. Medians over rounds. Also prints the number of database
queries per request and JSON for the record.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_api  # noqa: E402

SNIPPET = r"""
import json, statistics, time
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import clear_url_caches, path
import atlas.urls
from atlas.api import views

atlas.urls.urlpatterns.insert(0, path("api/v1/legacy/images/", views.SerializerImageListView.as_view()))
atlas.urls.urlpatterns.insert(0, path("api/v1/legacy/search/", views.SerializerSearchView.as_view()))
clear_url_caches()

client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION="Bearer " + KEY)
search = ["search/?k=20&q=" + q for q in QUERIES]
fresh = iter(range(10**9))  # a text never asked before: the text tower runs (no cached vector)
targets = {
    "baseline: licences": (lambda i: "/api/v1/licences/", None),
    "images: psoriasis, Fitzpatrick V-VI": (lambda i: "images/?condition=psoriasis&fitzpatrick=5&fitzpatrick=6", "images"),
    "images: unfiltered, first page of 50": (lambda i: "images/", "images"),
    "images: unfiltered, page_size=200": (lambda i: "images/?page_size=200", "images"),
    "text search, k=20, 5 rotating texts": (lambda i: search[i % len(search)], "search"),
    "text search, k=20, a new text each time": (lambda i: search[i % len(search)] + "+w" + str(next(fresh)), "search"),
}
def url(path, legacy):
    return path if path.startswith("/") else ("/api/v1/legacy/" if legacy else "/api/v1/") + path
cpu, queries = {}, {}
for name, (make, kind) in targets.items():
    for legacy in ([False, True] if kind else [False]):
        for i in range(5):
            response = client.get(url(make(i), legacy))
            assert response.status_code == 200, (name, response.content[:300])  # warm: model, caches
        with CaptureQueriesContext(connection) as captured:
            client.get(url(make(0), legacy))
        queries[(name, legacy)] = len(captured)
        cpu[(name, legacy)] = []
for round_number in range(ROUNDS):
    for name, (make, kind) in targets.items():
        for legacy in ([True, False] if kind else [False]):
            todo = [url(make(i), legacy) for i in range(REPEATS)]
            started = time.process_time()
            for path in todo:
                client.get(path)
            cpu[(name, legacy)].append((time.process_time() - started) / REPEATS * 1000)
out = {f"{name}|{'old' if legacy else 'new'}": {"cpu_ms": statistics.median(v), "rounds": v, "queries": queries[(name, legacy)]}
       for (name, legacy), v in cpu.items()}
print("CPU" + json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the database and var dir of a previous run")
    args = parser.parse_args()
    if not args.reuse:
        bench_api.setup(args.images)
    bench_api.manage("search_export_onnx")  # web processes embed queries with ONNX Runtime (no-op when current)
    key = bench_api.token()
    queries = [q.replace(" ", "+") for q in bench_api.QUERIES]
    code = f"KEY={key!r}\nREPEATS={args.repeats}\nROUNDS={args.rounds}\nQUERIES={queries!r}\n"
    out = bench_api.manage("shell", "-c", code + SNIPPET, capture=True)
    results = json.loads(next(line for line in out.splitlines() if line.startswith("CPU"))[3:])

    baseline = results["baseline: licences|new"]["cpu_ms"]
    print(f"\nCPU per request (ms), median of {args.rounds} rounds x {args.repeats} requests; baseline licences {baseline:.2f} ms\n")
    print("| endpoint | old CPU ms | new CPU ms | old / new | old queries | new queries | new vs baseline |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in dict.fromkeys(key.split("|")[0] for key in results):
        new = results[f"{name}|new"]
        old = results.get(f"{name}|old")
        if old is None:
            print(f"| {name} | - | {new['cpu_ms']:.2f} | - | - | {new['queries']} | 1.00x |")
            continue
        print(f"| {name} | {old['cpu_ms']:.2f} | {new['cpu_ms']:.2f} | {old['cpu_ms'] / new['cpu_ms']:.1f}x | "
              f"{old['queries']} | {new['queries']} | {new['cpu_ms'] / baseline:.1f}x |")
    print("\n" + json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
