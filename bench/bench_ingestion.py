"""Ingestion throughput (images/s) on SQLite and PostgreSQL, against a no-database baseline.

    .venv/bin/python bench/bench_ingestion.py                      # 1,000 demo images, both databases
    .venv/bin/python bench/bench_ingestion.py --images 300 --backends sqlite

1. Renders N demo images once (atlas/demo/render.py, seed 0, 256x256 JPEG) - not timed.
2. For each database, a child process with a fresh database and media folder ingests them
   with `image_ingest` in rounds of 100, alternating with a baseline round over the same
   images that does only the Pillow work ingestion does (sniff + decode + EXIF transpose,
   pixel hash, JPEG re-encode, thumbnail) with no database and no file writes. The median
   rates and their ratio show what the database and storage add; load from other processes
   hits both alike. Figures go into the "Catalogue" section of docs/benchmarks.md.

PostgreSQL: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/atlas_demo_bench),
dropped and created fresh on each run; query options pass through, e.g.
`?options=-c%20synchronous_commit%3Doff` to see what the commit flush costs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/atlas_demo_bench"
ROUND = 100


def render_images(count: int) -> list[tuple[str, int, str, list[tuple[int, int, int, int]], bytes]]:
    from atlas.demo.distribution import plan_dataset
    from atlas.demo.render import render_case

    out = []
    for spec in plan_dataset(images=count, seed=0):
        photo = render_case(
            condition=spec.condition, fitzpatrick_type=spec.fitzpatrick_type, body_site=spec.body_site,
            seed=spec.render_seed, views=spec.views,
        )[spec.view]
        out.append((spec.condition, spec.fitzpatrick_type, spec.case_id, list(photo.boxes), photo.jpeg))
    return out


def baseline(data: bytes) -> None:
    """The Pillow work of one ingestion, without the database or storage."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data), formats=("JPEG", "PNG", "WEBP")) as opened:
        opened.load()
        pixels = ImageOps.exif_transpose(opened).convert("RGB")
    hashlib.sha256(pixels.tobytes()).hexdigest()
    pixels.save(io.BytesIO(), format="JPEG", quality=90, optimize=True)
    thumb = pixels.copy()
    thumb.thumbnail((256, 256), Image.Resampling.LANCZOS)
    thumb.save(io.BytesIO(), format="JPEG", quality=85, optimize=True)


def child(data_path: str) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from atlas.demo.seed import demo_source_get_or_create
    from atlas.models import Condition
    from atlas.services.ingestion import Box, image_ingest

    call_command("migrate", verbosity=0)
    images = pickle.loads(Path(data_path).read_bytes())
    source = demo_source_get_or_create()
    conditions = {c.slug: c for c in Condition.objects.all()}
    base_rates, ingest_rates = [], []
    for start in range(0, len(images), ROUND):
        chunk = images[start : start + ROUND]
        t0 = time.perf_counter()
        for *_, data in chunk:
            baseline(data)
        base_rates.append(len(chunk) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for slug, skin_type, case_id, boxes, data in chunk:
            result = image_ingest(
                file=data, condition=conditions[slug], source=source, fitzpatrick_type=skin_type,
                fitzpatrick_label_source="dermatologist", case_id=case_id,
                regions=[Box(*box) for box in boxes], enqueue_followups=False,
            )
            assert result.created
        ingest_rates.append(len(chunk) / (time.perf_counter() - t0))
    print(json.dumps({"baseline": statistics.median(base_rates), "ingest": statistics.median(ingest_rates), "n": len(images)}))


def reset_postgres(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    t0 = time.perf_counter()
    images = render_images(args.images)
    print(f"rendered {len(images)} demo images in {time.perf_counter() - t0:.1f} s (not part of the figures)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="atlas-bench-ingest-") as tmp:
        data_path = Path(tmp) / "images.pickle"
        data_path.write_bytes(pickle.dumps(images))
        for backend in args.backends.split(","):
            var_dir = Path(tmp) / backend
            env = {**os.environ, "ATLAS_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "atlas.settings.local"}
            if backend == "postgres":
                env["DATABASE_URL"] = os.environ.get("BENCH_POSTGRES_URL", POSTGRES_URL)
                reset_postgres(env["DATABASE_URL"])
            else:
                env.pop("DATABASE_URL", None)
            done = subprocess.run([sys.executable, __file__, "--child", str(data_path)], env=env, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{backend}: the child failed:\n{done.stderr}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((backend, result))
    print(f"\n| database | images | ingestion (img/s) | baseline: Pillow only, no DB (img/s) | ingestion / baseline |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for backend, r in rows:
        print(f"| {backend} | {r['n']} | {r['ingest']:.0f} | {r['baseline']:.0f} | {r['ingest'] / r['baseline']:.2f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
