"""Time `manage.py seed_demo` at its default size (3,000 images) into a fresh var directory.

    .venv/bin/python bench/bench_seed_demo.py                  # default size
    .venv/bin/python bench/bench_seed_demo.py --images 500     # quicker

Reports wall time and CPU time (user + sys of seed_demo and its rendering processes), and
in the same run two baselines measured on a sample of the same images, single process:
rendering only, and rendering + ingestion into a throw-away SQLite database. CPU time is
what the machine's load does not change much; wall time depends on what else runs.
Figures go into the "Catalogue" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cmd: list[str], env: dict) -> tuple[float, float, str]:
    cpu0, t0 = children_cpu(), time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t0, children_cpu() - cpu0, out


def render_only_cpu_per_image(sample: int) -> float:
    from atlas.demo.distribution import plan_dataset
    from atlas.demo.render import render_case

    t0 = time.process_time()
    for spec in plan_dataset(images=sample, seed=0):
        if spec.view == 0:
            render_case(condition=spec.condition, fitzpatrick_type=spec.fitzpatrick_type, body_site=spec.body_site,
                        seed=spec.render_seed, views=spec.views)
    return (time.process_time() - t0) / sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--sample", type=int, default=200, help="images for the single-process baselines")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="atlas-bench-seed-") as tmp:
        env = {**os.environ, "ATLAS_VAR_DIR": tmp, "DJANGO_SETTINGS_MODULE": "atlas.settings.local"}
        env.pop("DATABASE_URL", None)
        migrate_wall, _, _ = run([python, "manage.py", "migrate", "--noinput", "-v0"], env)
        load_before = os.getloadavg()[0]
        cmd = [python, "manage.py", "seed_demo"] + (["--images", str(args.images)] if args.images != 3000 else [])
        wall, cpu, out = run(cmd, env)
        load_after = os.getloadavg()[0]
        rerun_wall, _, rerun_out = run(cmd, env)
        media = sum(p.stat().st_size for p in Path(tmp, "media").rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory(prefix="atlas-bench-seed-base-") as tmp:
        env = {**os.environ, "ATLAS_VAR_DIR": tmp, "DJANGO_SETTINGS_MODULE": "atlas.settings.local"}
        env.pop("DATABASE_URL", None)
        run([python, "manage.py", "migrate", "--noinput", "-v0"], env)
        base_wall, base_cpu, _ = run(
            [python, "manage.py", "seed_demo", "--images", str(args.sample), "--seed", "99", "--processes", "1"], env
        )
    render_cpu = render_only_cpu_per_image(args.sample)

    print(out.strip())
    print(rerun_out.strip().splitlines()[0])
    print()
    print("| measure | value |")
    print("| --- | ---: |")
    print(f"| `seed_demo` images | {args.images} |")
    print(f"| wall time (2 rendering processes + ingestion in the main process) | {wall:.1f} s |")
    print(f"| CPU time, all processes (user + sys) | {cpu:.1f} s |")
    print(f"| CPU per image | {cpu / args.images * 1000:.1f} ms |")
    print(f"| baseline, same run: render + ingest, 1 process, {args.sample} images, CPU per image | {base_cpu / args.sample * 1000:.1f} ms |")
    print(f"| baseline, same run: render only, CPU per image | {render_cpu * 1000:.1f} ms |")
    print(f"| re-run with the same seed (adds nothing) | {rerun_wall:.1f} s |")
    print(f"| media written (images + thumbnails) | {media / 2**20:.0f} MiB |")
    print(f"| migrate on the fresh database (not included above) | {migrate_wall:.1f} s |")
    print(f"| load average before / after seed_demo (2 cores) | {load_before:.1f} / {load_after:.1f} |")


if __name__ == "__main__":
    main()
