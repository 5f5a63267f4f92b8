"""The automatic gates on the shipped demo model: pass rate per (condition x skin type) cell, and
what the gates cost per image beside the generator, measured in the same run on the same images.

    ATLAS_VAR_DIR=var nice .venv/bin/python bench/bench_gates.py               # 8 draws per cell
    ATLAS_VAR_DIR=var nice .venv/bin/python bench/bench_gates.py --per-cell 16 --json gates.json

Needs a prepared demo atlas (`prepare_demo`: the active checkpoint, the real-only classifier and
the near-copy index). Every cell of the checkpoint's vocabulary x types I-VI gets `--per-cell`
samples drawn exactly as a gap-filling job draws them (maps from the condition's real layouts,
stable seeds, batches of GAP_FILL_BATCH_SIZE), then the four gates with the settings'
thresholds. Nothing is written to the catalogue. Torch runs on one thread (ATLAS_GAN_THREADS=1
unless set), as the gap-filling figures in docs/benchmarks.md. Figures go into docs/benchmarks.md
("Gates") and docs/gap-filling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-cell", type=int, default=8, help="samples drawn per cell (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")
    os.environ.setdefault("ATLAS_GAN_THREADS", "1")
    os.environ.setdefault("ATLAS_GAN_DEVICE", "cpu")
    import django

    django.setup()
    from django.conf import settings

    from atlas.models import Condition
    from atlas.skin import roman
    from generation import gates as gt
    from generation import sample as smp
    from generation.gap_maps import gap_map, stable_seed
    from generation.gaps import cell_key, crop_window, real_layouts
    from generation.gating import gate_judges, gate_thresholds, generator_geometry
    from generation.services import gan_generator_load

    gen = gan_generator_load()
    enabled = gt.GATES
    judges = gate_judges(geometry=generator_geometry(gen), conditions=list(gen.vocabulary), enabled=enabled)
    thresholds = gate_thresholds()
    batch = settings.GAP_FILL_BATCH_SIZE
    conditions = {c.slug: c for c in Condition.objects.filter(slug__in=gen.vocabulary)}
    cells: dict[tuple[str, int], dict] = {}
    seconds = defaultdict(float)
    images_total = 0
    for slug in sorted(conditions):
        layouts = real_layouts(conditions[slug])
        for skin_type in range(1, 7):
            key = cell_key(slug, skin_type)
            row = {"drawn": 0, "passed": 0, "failed": defaultdict(int)}
            for start in range(0, args.per_cell, batch):
                draws = range(start, min(args.per_cell, start + batch))
                t0 = time.perf_counter()
                maps = [gap_map(condition=slug, skin_type=skin_type, layouts=layouts, vocabulary=gen.vocabulary,
                                size=gen.image_size, window=crop_window(gen), vary_size=True,
                                seed=stable_seed(args.seed, key, d)) for d in draws]
                t1 = time.perf_counter()
                images = smp.generate(gen, [m.semantic_map for m in maps], seed=stable_seed(args.seed, key, "batch", start),
                                      batch_size=len(maps))
                t2 = time.perf_counter()
                verdict = gt.gates_run(images, condition=slug, skin_type=skin_type, boxes=[m.params["boxes"] for m in maps],
                                       judges=judges, thresholds=thresholds, enabled=enabled)
                t3 = time.perf_counter()
                seconds["maps"] += t1 - t0
                seconds["generator"] += t2 - t1
                seconds["gates (all four)"] += t3 - t2
                for name, s in verdict.seconds.items():
                    seconds[f"gate: {name}"] += s
                images_total += len(maps)
                row["drawn"] += len(maps)
                for i, result in enumerate(verdict.results):
                    row["passed"] += verdict.passed(i)
                    for name, outcome in result.items():
                        row["failed"][name] += not outcome["passed"]
            cells[(slug, skin_type)] = row
        print(f"{slug}: done", file=sys.stderr, flush=True)

    def rate(rows) -> float:
        drawn = sum(r["drawn"] for r in rows)
        return sum(r["passed"] for r in rows) / drawn if drawn else 0.0

    print(f"# Gates on {gen.name} ({gen.image_size} px), {args.per_cell} draws per cell, {images_total} images; "
          f"{platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"classifier {judges.classifier.name}; encoder {judges.encoder.name}; index {len(judges.copy_index)} real crops; "
          f"calibration {judges.calibration.name}; thresholds {thresholds}")
    print("\n| condition | " + " | ".join(roman(t) for t in range(1, 7)) + " | all |")
    print("| --- | " + " | ".join("---:" for _ in range(7)) + " |")
    for slug in sorted(conditions):
        rows = [cells[(slug, t)] for t in range(1, 7)]
        print(f"| {slug} | " + " | ".join(f"{rate([r]):.2f}" for r in rows) + f" | {rate(rows):.2f} |")
    by_type = [[cells[(s, t)] for s in conditions] for t in range(1, 7)]
    print("| **all** | " + " | ".join(f"**{rate(rows):.2f}**" for rows in by_type) + f" | **{rate(list(cells.values())):.2f}** |")
    print("\nShare of draws failing each gate (a draw may fail several), by requested type:\n")
    print("| gate | " + " | ".join(roman(t) for t in range(1, 7)) + " | all |")
    print("| --- | " + " | ".join("---:" for _ in range(7)) + " |")
    for name in enabled:
        shares = [sum(r["failed"][name] for r in rows) / sum(r["drawn"] for r in rows) for rows in by_type]
        total = sum(r["failed"][name] for r in cells.values()) / images_total
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in shares) + f" | {total:.2f} |")
    print("\n| per image | ms | ratio to the generator |")
    print("| --- | ---: | ---: |")
    base = seconds["generator"] / images_total
    for name in ["generator", "maps", "gates (all four)", *(f"gate: {g}" for g in enabled)]:
        per = seconds[name] / images_total
        print(f"| {name} | {1000 * per:.2f} | {per / base:.2f} |")
    full = sum(1 for r in cells.values() if r["passed"] >= 1)
    print(f"\ncells with at least one passing draw: {full} of {len(cells)}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "checkpoint": gen.name, "per_cell": args.per_cell, "images": images_total,
            "cells": {cell_key(s, t): {**r, "failed": dict(r["failed"])} for (s, t), r in cells.items()},
            "seconds": dict(seconds), "thresholds": thresholds.__dict__,
        }, indent=1))


if __name__ == "__main__":
    main()
