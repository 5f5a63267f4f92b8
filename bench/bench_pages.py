"""Server-side render time of the atlas pages on the demo atlas (docs/benchmarks.md, "Web pages").

Each request goes through Django's whole stack (middleware, URL resolution, views, database,
templates) with the test Client, in process, so the figure is the server's time to answer,
without network or browser. Pages are measured in interleaved rounds, so load from other jobs
hits every page alike, and each is also given as a ratio to a baseline view (a plain "ok"
through the same stack) measured in the same rounds.

Prepare the demo atlas first (its own var dir), then run:

    export ATLAS_VAR_DIR=/tmp/atlas-bench
    .venv/bin/python manage.py migrate && .venv/bin/python manage.py seed_demo --images 800
    .venv/bin/python manage.py train_clip --preset fast --epochs 4 && .venv/bin/python manage.py reindex
    .venv/bin/python bench/bench_pages.py --rounds 60
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import include, path  # noqa: E402


class BenchUrls:
    """The site's URLs plus the baseline: the cheapest answer the same stack can give."""

    urlpatterns = [path("bench-baseline/", lambda request: HttpResponse("ok")), path("", include("atlas.urls"))]


def pages() -> list[tuple[str, str, dict]]:
    """(label, url, options) of what is measured; POST data in options["post"]."""
    from atlas.models import Image

    real = Image.objects.public().filter(origin="real").order_by("id")
    synthetic = Image.objects.public().filter(origin="synthetic").order_by("id").first()
    sample = real[len(real) // 2]
    with sample.file.open("rb") as handle:
        photo = handle.read()
    listed = [
        ("baseline (plain 'ok' view)", "/bench-baseline/", {}),
        ("home", "/", {}),
        ("coverage heatmap", "/coverage/", {}),
        ("condition list", "/conditions/", {}),
        ("condition page (melanoma)", "/conditions/melanoma/", {}),
        ("skin type page (V)", "/skin-types/5/", {}),
        ("search: no query (browse)", "/search/", {}),
        ("search: filters (ringworm, V+VI)", "/search/?condition=ringworm&fitzpatrick=5&fitzpatrick=6", {}),
        ("search: text", "/search/?q=ringworm+on+dark+skin", {}),
        ("search: text, page 3", "/search/?q=itchy+rash&page=3", {}),
        ("search: more like this", f"/search/?like={sample.public_id}", {}),
        ("search by photo (POST)", "/search/photo/", {"post": photo}),
        ("image detail (real)", f"/images/{sample.public_id}/", {}),
    ]
    if synthetic is not None:
        listed.append(("image detail (synthetic)", f"/images/{synthetic.public_id}/", {}))
    return listed


def fetch(client: Client, url: str, options: dict) -> int:
    if "post" in options:
        upload = io.BytesIO(options["post"])
        upload.name = "photo.jpg"
        response = client.post(url, {"photo": upload})
    else:
        response = client.get(url)
    return response.status_code


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60, help="timed requests per page (default 60)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first (default 3)")
    args = parser.parse_args()

    # No setup_test_environment(): it instruments template rendering (a signal that copies every
    # context), which would make the pages look slower than they are.
    with override_settings(ROOT_URLCONF=BenchUrls, DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        client = Client()
        measured = pages()
        load_before = os.getloadavg()

        started = time.perf_counter()
        first_text = fetch(client, "/search/?q=melanoma", {})
        cold = time.perf_counter() - started  # the first text query loads the CLIP model in this process

        statuses, queries = {}, {}
        for label, url, options in measured:
            for _ in range(args.warmup):
                statuses[label] = fetch(client, url, options)
            with CaptureQueriesContext(connection) as captured:
                fetch(client, url, options)
            queries[label] = len(captured.captured_queries)

        times: dict[str, list[float]] = {label: [] for label, _, _ in measured}
        for _ in range(args.rounds):
            for label, url, options in measured:
                started = time.perf_counter()
                fetch(client, url, options)
                times[label].append((time.perf_counter() - started) * 1000)
        load_after = os.getloadavg()

    from atlas.models import Image

    base = statistics.median(times[measured[0][0]])
    print(f"demo atlas: {Image.objects.public().count()} public images; {args.rounds} rounds, {args.warmup} warm-up requests per page")
    print(f"load average (1, 5, 15 min): before {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}, "
          f"after {load_after[0]:.1f} {load_after[1]:.1f} {load_after[2]:.1f}; CPUs: {os.cpu_count()}")
    print(f"first text query in a fresh process (loads the CLIP model): {cold * 1000:.0f} ms (status {first_text})\n")
    print("| page | status | queries | p50 ms | p95 ms | max ms | p50 / baseline p50 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, _, _ in measured:
        values = times[label]
        p50, p95 = statistics.median(values), percentile(values, 95)
        print(f"| {label} | {statuses[label]} | {queries[label]} | {p50:.1f} | {p95:.1f} | {max(values):.1f} | {p50 / base:.1f}x |")
    worst = max((percentile(times[label], 95), label) for label, _, _ in measured)
    print(f"\nslowest p95: {worst[1]} at {worst[0]:.1f} ms (target: under 200 ms)")


if __name__ == "__main__":
    main()
