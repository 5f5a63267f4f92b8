"""What a staff gap plan and a job start cost a web process in memory: the checks from the
checkpoint's row and the judges' files (now) beside the old path that loaded the generator's
checkpoint and the gates' judges with torch, in one process, one after the other (issue 17, item 1).

    nice .venv/bin/python bench/bench_staff_gap_memory.py [--images 200] [--json out.json]

Set-up (a subprocess, scratch var dir, SQLite): `seed_demo` at 128 px, the shipped demo
generator registered and active, the shipped condition classifier and its sidecar installed.
Gates: tone, condition and defects (the near-copy gate's index needs its encoder trained, minutes;
without it the old path's cost is understated, not overstated). Then a fresh process, as a
gunicorn worker: django.setup() and every view module imported; USS (psutil: pages only this
process maps) and whether torch is imported, after each of:
1. start-up;
2. the staff page's plan (GET /generation/fill-gaps/?target=...) through the test client, signed in as staff;
3. a job start (`generation_job_create(enqueue=False)`: the page's POST without the broker);
4. the old path on the same plan: the checkpoint file read with torch and the gates' judges loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = r"""
import django; django.setup()
import shutil
from django.conf import settings
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("seed_demo", images=IMAGES, size=128, verbosity=0)
from generation.services import gan_checkpoint_register
from generation.quality import DEMO_CLASSIFIER
from generation.judge_files import classifier_path
gan_checkpoint_register(path=settings.BASE_DIR / "generation" / "demo_model" / "dermgan-demo.pt", activate=True)
target = classifier_path(); target.parent.mkdir(parents=True, exist_ok=True)
shutil.copyfile(DEMO_CLASSIFIER, target); shutil.copyfile(DEMO_CLASSIFIER.with_suffix(".json"), target.with_suffix(".json"))
from django.contrib.auth import get_user_model
get_user_model().objects.create_user("curator", password="bench-password-x", is_staff=True)
print("SETUP=ok")
"""

MEASURE = r"""
import json, sys, time, psutil
from atlas.wsgi import application  # django.setup(), as a gunicorn worker does
from django.urls import get_resolver

def views(patterns):
    for p in patterns:
        yield from views(p.url_patterns) if hasattr(p, "url_patterns") else [p.callback]

list(views(get_resolver().url_patterns))
rows = []
def mark(step, started):
    info = psutil.Process().memory_full_info()
    rows.append({"step": step, "uss_mb": round(info.uss / 2**20, 1), "rss_mb": round(info.rss / 2**20, 1),
                 "torch_imported": "torch" in sys.modules, "seconds": round(time.perf_counter() - started, 3)})

mark("start-up: every view module imported", time.perf_counter())
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
assert client.login(username="curator", password="bench-password-x")
query = "target=3&skin_types=5&skin_types=6&max_synthetic_percent=100"
started = time.perf_counter()
page = client.get("/generation/fill-gaps/?" + query)
assert page.status_code == 200, (page.status_code, page.content[-2000:])
mark("staff plan page (GET with a policy)", started)
from generation.gaps import GapPolicy, gap_plan, generation_job_create
policy = GapPolicy(target=3, skin_types=(5, 6))
started = time.perf_counter()
job = generation_job_create(policy=policy, enqueue=False)
mark(f"job start ({job.planned_total} images planned)", started)
started = time.perf_counter()
from generation import sample as smp
from generation.gating import gate_judges
plan = gap_plan(policy=policy)
state = smp.checkpoint_read(plan.checkpoint.file)
gate_judges(geometry=(int(state["config"].get("crop_window") or 128), int(state["image_size"])),
            conditions=sorted({c.condition.slug for c in plan.cells}))
mark("old path: checkpoint file read with torch + judges loaded", started)
print("RESULT=" + json.dumps(rows))
"""


def env_for(var: Path) -> dict:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ATLAS_", "DATABASE_"))},
        "DJANGO_SETTINGS_MODULE": "atlas.settings.local",
        "ATLAS_VAR_DIR": str(var),
        "ATLAS_GATES": "tone,condition,defects",
        "PYTHONPATH": str(ROOT),
    }


def run(code: str, env: dict, prefix: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    return next(x for x in done.stdout.splitlines() if x.startswith(prefix)).removeprefix(prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="demo atlas size (seed_demo --images)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-staff-gap-"))
    try:
        env = env_for(var)
        run(SETUP.replace("IMAGES", str(args.images)), env, "SETUP=")
        rows = json.loads(run(MEASURE, env, "RESULT="))
    finally:
        shutil.rmtree(var, ignore_errors=True)
    print(f"{'step':<62} {'USS MiB':>8} {'RSS MiB':>8}  torch  seconds")
    for row in rows:
        print(f"{row['step']:<62} {row['uss_mb']:>8} {row['rss_mb']:>8}  {'yes' if row['torch_imported'] else 'no':<5}  {row['seconds']}")
    result = {"images": args.images, "steps": rows}
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
