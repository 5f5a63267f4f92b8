"""Content credentials: signing and verification cost per image, against the plain ingest, same run.

    .venv/bin/python bench/bench_credentials.py              # 300 images of 256x256 (GAN output size)
    .venv/bin/python bench/bench_credentials.py --images 100

1. Renders N demo images (atlas/demo/render.py, seed 0) and keeps them as PNG, the format the
   generator hands to ingestion - not timed.
2. A child process with a fresh SQLite database, media folder and local demo key pair runs, in
   rounds of 25, alternating so that load from other processes hits every step alike:
   - plain ingest: `image_ingest` of a real PNG (sniff, decode, hash, re-encode, thumbnail, rows);
   - synthetic ingest: the same with origin=synthetic, i.e. the text marker plus the C2PA
     manifest signed inside ingestion (each round on images not ingested before);
   - sign: `credentials_sign_generated` alone on an encoded PNG;
   - verify: `credentials_verify` (read + validate, trust anchors on) of a signed file;
   - export re-sign: `credentials_sign_export` (reads the file's manifest, adds the export one).
   Medians of the per-round means, in ms per image, and each as a share of the plain ingest.
Figures go into the "Content credentials" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ROUND = 25
PROVENANCE = {"model": "DermGAN", "checkpoint": "dermgan-fast-demo.pt@600", "checkpoint_step": 600, "seed": 0}


def render_pngs(count: int) -> list[tuple[str, int, bytes]]:
    from PIL import Image

    from atlas.demo.distribution import plan_dataset
    from atlas.demo.render import render_case

    out = []
    for spec in plan_dataset(images=count, seed=0):
        photo = render_case(
            condition=spec.condition, fitzpatrick_type=spec.fitzpatrick_type, body_site=spec.body_site,
            seed=spec.render_seed, views=spec.views,
        )[spec.view]
        buffer = io.BytesIO()
        Image.open(io.BytesIO(photo.jpeg)).convert("RGB").resize((256, 256)).save(buffer, format="PNG", compress_level=0)
        out.append((spec.condition, spec.fitzpatrick_type, buffer.getvalue()))
    return out


def _per_image_ms(fn, items) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - t0) * 1000 / len(items)


def child(data_path: str) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from atlas.demo.seed import demo_source_get_or_create
    from atlas.models import Condition, Image
    from atlas.services.credentials import (
        credentials_sign_export,
        credentials_sign_generated,
        credentials_verify,
        demo_credentials_ensure,
    )
    from atlas.services.ingestion import image_ingest

    call_command("migrate", verbosity=0)
    demo_credentials_ensure()
    images = pickle.loads(Path(data_path).read_bytes())
    source = demo_source_get_or_create()
    conditions = {c.slug: c for c in Condition.objects.all()}
    half = len(images) // 2
    real, synthetic = images[:half], images[half:]

    def ingest(origin: str):
        def run(item):
            slug, skin_type, data = item
            result = image_ingest(
                file=data, condition=conditions[slug], source=source, fitzpatrick_type=skin_type, origin=origin,
                provenance=PROVENANCE if origin == "synthetic" else None, enqueue_followups=False,
            )
            assert result.created
        return run

    timings: dict[str, list[float]] = {k: [] for k in ("plain", "synthetic", "sign", "verify", "export")}
    for start in range(0, half, ROUND):
        timings["plain"].append(_per_image_ms(ingest("real"), real[start : start + ROUND]))
        timings["synthetic"].append(_per_image_ms(ingest("synthetic"), synthetic[start : start + ROUND]))
        stored = list(Image.objects.synthetic().order_by("-id")[:ROUND])
        files = [image.file.open("rb").read() for image in stored]
        for image in stored:
            image.file.close()
        unsigned = [data for *_, data in real[start : start + ROUND]]
        timings["sign"].append(_per_image_ms(lambda d: credentials_sign_generated(data=d, provenance=PROVENANCE, title="x.png", review_state="pending"), unsigned))
        timings["verify"].append(_per_image_ms(lambda d: credentials_verify(data=d, mime_type="image/png"), files))
        timings["export"].append(_per_image_ms(lambda pair: credentials_sign_export(data=pair[0], image=pair[1]), list(zip(files, stored))))
    print(json.dumps({key: statistics.median(values) for key, values in timings.items()} | {"n": half}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300, help="split in two: half plain, half synthetic")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    t0 = time.perf_counter()
    images = render_pngs(args.images)
    print(f"rendered {len(images)} demo images in {time.perf_counter() - t0:.1f} s (not part of the figures)")
    with tempfile.TemporaryDirectory(prefix="atlas-bench-c2pa-") as tmp:
        data_path = Path(tmp) / "images.pickle"
        data_path.write_bytes(pickle.dumps(images))
        env = {**os.environ, "ATLAS_VAR_DIR": str(Path(tmp) / "var"), "DJANGO_SETTINGS_MODULE": "atlas.settings.local"}
        for name in ("DATABASE_URL", "ATLAS_C2PA_KEY_FILE", "ATLAS_C2PA_CERT_FILE", "ATLAS_C2PA_TRUST_ANCHORS_FILE"):
            env.pop(name, None)
        done = subprocess.run([sys.executable, __file__, "--child", str(data_path)], env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"the child failed:\n{done.stderr}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
    plain = r["plain"]
    print(f"\n{r['n']} images per step, 256x256 PNG, SQLite, demo ES256 key")
    print("| step | ms per image | share of the plain ingest |")
    print("| --- | ---: | ---: |")
    rows = [
        ("plain ingest (real PNG)", "plain"), ("synthetic ingest (marker + signed manifest)", "synthetic"),
        ("sign alone (`credentials_sign_generated`)", "sign"), ("verify (`credentials_verify`, trust on)", "verify"),
        ("export re-sign (`credentials_sign_export`)", "export"),
    ]  # fmt: skip
    for label, key in rows:
        print(f"| {label} | {r[key]:.2f} | {r[key] / plain:.2f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
