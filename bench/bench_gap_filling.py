"""Gap-filling throughput: synthetic images stored per second, end to end, against the raw
generator on the same maps in the same run; and where the end-to-end time goes.

    nice .venv/bin/python bench/bench_gap_filling.py                   # SQLite in a temp dir
    nice .venv/bin/python bench/bench_gap_filling.py --database-url postgres://postgres@127.0.0.1:5432/atlas_bench_gaps

It builds a throwaway catalogue (real images with lesion boxes) and a generator with the
`fast` preset's architecture (64x64, trained one step: throughput does not depend on the
weights), then alternates, round by round, (a) `generation.sample.generate` on a batch of
gap maps and (b) a gap-filling job run in-process with `generation_job_run` (no broker:
maps, generator, ingestion, samples, progress, locks, commits). The job's time is split by
timing wrappers around ingestion's encode/decode steps and the storage backend's `save`; the
rest of the store step is the database (queries, locks, commits). Median of the rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(database_url: str | None) -> Path:
    var = Path(tempfile.mkdtemp(prefix="atlas-bench-gaps-"))
    os.environ["ATLAS_VAR_DIR"] = str(var)
    os.environ["DEBUG"] = "false"  # no query log in memory
    os.environ.setdefault("ATLAS_GAN_DEVICE", "cpu")
    os.environ["ATLAS_AFTER_INGEST_TASKS"] = "bench.bench_gap_filling.NO_FOLLOWUP"
    os.environ["ATLAS_GATES"] = "none"  # the store path only; bench/bench_gates.py measures the gates
    if database_url:
        if "bench" not in database_url.rsplit("/", 1)[-1]:
            sys.exit("refusing: the bench drops the database's schema; use a scratch database named *bench*")
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")
    import django

    django.setup()
    from django.core.management import call_command

    if database_url:
        from django.db import connection

        with connection.cursor() as cursor:  # a clean schema each run
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0)
    return var


class _NoFollowup:
    """Embedding is a separate task on another queue; the bench measures gap filling alone."""

    def delay(self, image_id: int) -> None:
        pass


NO_FOLLOWUP = _NoFollowup()


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        setattr(owner, name, timed)


def build_world(var: Path, n_real: int):
    import io

    from PIL import Image as PILImage
    from PIL import ImageDraw

    from atlas.models import Condition, Source
    from atlas.services.ingestion import Box, image_ingest
    from generation.dataset import PairSet
    from generation.models import GanCheckpoint
    from generation.services import catalogue_vocabulary
    from generation.train import preset, train

    source = Source.objects.create(name="Bench clinic", slug="bench", licence="CC-BY-4.0", allows_generative_training=True)
    conditions = list(Condition.objects.order_by("slug")[:4])
    for i in range(n_real):
        image = PILImage.new("RGB", (256, 256), (200 - 10 * (i % 6), 150, 120))
        x, y = 30 + (i * 37) % 150, 40 + (i * 53) % 140
        ImageDraw.Draw(image).ellipse((x, y, x + 60, y + 50), fill=(120, 60, 50))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        image_ingest(file=buffer.getvalue(), condition=conditions[i % len(conditions)], source=source,
                     fitzpatrick_type=1 + i % 3, regions=[Box(x, y, 60, 50)], enqueue_followups=False)
    import torch

    cfg = preset("fast", steps=1, batch_size=2, checkpoint_every=1, sample_every=1000, device="cpu")
    size = cfg.image_size
    pairs = PairSet.from_tensors(torch.randint(0, 255, (4, 3, size, size), dtype=torch.uint8),
                                 torch.randint(0, 255, (4, 3, size, size), dtype=torch.uint8))
    result = train(cfg, pairs=pairs, vocabulary=catalogue_vocabulary(), data_fingerprint="bench",
                   out_dir=var / "gan" / "bench", progress=False)
    checkpoint = GanCheckpoint.objects.create(path=str(result.checkpoints[-1]), run="bench", preset="fast", step=1,
                                              data_fingerprint="bench", is_active=True)
    return conditions, checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL of a scratch database (default: SQLite)")
    parser.add_argument("--images", type=int, default=96, help="synthetic images per round (default 96)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared machine extra threads spin-wait and add noise)")
    args = parser.parse_args()

    var = setup_django(args.database_url)
    import torch

    torch.set_num_threads(args.threads)
    from django.conf import settings
    from django.core.files.storage import default_storage

    from atlas.services import ingestion
    from generation import gaps
    from generation import sample as smp
    from generation.gap_maps import gap_map, stable_seed
    from generation.services import gan_generator_load

    conditions, checkpoint = build_world(var, n_real=24)
    gen = gan_generator_load(checkpoint=checkpoint)
    layouts = gaps.real_layouts(conditions[0])
    maps = [gap_map(condition=conditions[0].slug, skin_type=6, layouts=layouts, vocabulary=gen.vocabulary,
                    size=gen.image_size, window=settings.GAN_CROP_SIZE, vary_size=True, seed=stable_seed(i)).semantic_map
            for i in range(args.images)]

    timers = Timers()
    timers.wrap(ingestion, "_decode", "decode")
    timers.wrap(ingestion, "_encode_main", "encode")
    timers.wrap(ingestion, "_encode_thumbnail", "encode")
    timers.wrap(default_storage, "save", "storage")

    def raw() -> tuple[float, float, dict]:
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, len(maps), args.batch_size):
            smp.generate(gen, maps[start : start + args.batch_size], seed=start, batch_size=args.batch_size)
        return args.images / (time.perf_counter() - t0), args.images / (time.process_time() - c0), {}

    skin_cycle = iter(range(10**6))

    def end_to_end() -> tuple[float, float, dict]:
        # A fresh cell each round (a new condition x skin type), so every round stores `images`.
        n = next(skin_cycle)
        condition, skin = conditions[n // 6 % len(conditions)], 1 + n % 6
        policy = gaps.GapPolicy(target=args.images, conditions=(condition.slug,), skin_types=(skin,))
        job = gaps.generation_job_create(policy=policy, batch_size=args.batch_size, enqueue=False)
        timers.seconds.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        report = gaps.generation_job_run(job_id=job.pk, budget_seconds=3600)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert report.outcome == "finished" and report.stored == job.planned_total, report
        parts = {"maps": report.seconds["maps"], "generator": report.seconds["generate"],
                 "decode+encode": timers.seconds.get("decode", 0) + timers.seconds.get("encode", 0),
                 "storage (file writes)": timers.seconds.get("storage", 0)}
        parts["database (queries, locks, commits)"] = (
            report.seconds["store"] - parts["decode+encode"] - parts["storage (file writes)"])
        parts["other (job bookkeeping)"] = wall - sum(parts.values())
        return job.planned_total / wall, job.planned_total / cpu, {k: v / wall for k, v in parts.items()}

    # Skin types 1-3 hold real images in build_world; start the end-to-end cells on the others.
    for _ in range(3):
        next(skin_cycle)
    raw(), end_to_end()  # warm-up
    rates: dict[str, list[float]] = {"raw": [], "e2e": [], "raw_cpu": [], "e2e_cpu": []}
    shares: list[dict] = []
    for _ in range(args.rounds):
        rate, cpu_rate, _ = raw()
        rates["raw"].append(rate)
        rates["raw_cpu"].append(cpu_rate)
        rate, cpu_rate, split = end_to_end()
        rates["e2e"].append(rate)
        rates["e2e_cpu"].append(cpu_rate)
        shares.append(split)

    med = {key: statistics.median(values) for key, values in rates.items()}
    raw_rate, e2e_rate = med["raw"], med["e2e"]
    vendor = "PostgreSQL" if args.database_url else "SQLite (WAL, file)"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s); load average {os.getloadavg()[0]:.1f}; database {vendor}")
    print(f"generator: fast preset architecture, {gen.image_size}x{gen.image_size}, batch {args.batch_size}; "
          f"{args.images} images per round, median of {args.rounds} rounds\n")
    print("| measure | images/s (wall) | ratio | images per CPU-second | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| raw generator (`sample.generate`, same maps) | {raw_rate:.1f} | 1.00 | {med['raw_cpu']:.1f} | 1.00 |")
    print(f"| gap filling end to end (`generation_job_run`, {vendor}) | {e2e_rate:.1f} | {e2e_rate / raw_rate:.2f} "
          f"| {med['e2e_cpu']:.1f} | {med['e2e_cpu'] / med['raw_cpu']:.2f} |")
    print("\n| share of end-to-end time | % |")
    print("| --- | ---: |")
    for key in shares[0]:
        print(f"| {key} | {100 * statistics.median(s[key] for s in shares):.0f} |")


if __name__ == "__main__":
    main()
