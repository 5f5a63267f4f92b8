"""Mixed load against a production-like deployment on this machine (docs/benchmarks.md, Operations).

Starts, in a scratch var dir: PostgreSQL database `atlas_ops_bench` (dropped and re-created),
a private Redis on a free port (the machine's 6379 is left alone), gunicorn with
scripts/gunicorn.conf.py, a `default,indexing` worker and a `generation` worker (-c 1,
prefetch 1) - the processes of the Procfile. The catalogue is the demo atlas (`seed_demo`),
the search model a random-init SEARCH_CLIP_MODEL (speed does not depend on the weights), the GAN
a 64x64 generator trained for two steps. Then N clients (threads) send, for --duration
seconds, a mix of: browse pages, text searches (page and API), API uploads of new images, a
static file (the baseline: gunicorn + WhiteNoise, no database), and one gap-filling job
started through the API at the start. At the end every upload that answered 201 is looked up
in the database (lost uploads) and the job's row is read.

    nice .venv/bin/python bench/bench_mixed_load.py --duration 600 --clients 16
    nice .venv/bin/python bench/bench_mixed_load.py --embedding-cost   # CPU per embedded image (docs/scaling.md)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG = "postgres://postgres@127.0.0.1:5432"
DB = "atlas_ops_bench"

SETUP = r"""
import json, torch, open_clip
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("seed_demo", images=IMAGES, verbosity=0)
call_command("collectstatic", interactive=False, verbosity=0)
from django.conf import settings
from pathlib import Path
from search.encoder import register_model_configs
from search.clip_train import save_checkpoint
register_model_configs(); torch.manual_seed(0)
save_checkpoint(open_clip.create_model(settings.SEARCH_CLIP_MODEL), Path(settings.SEARCH_CLIP_PRETRAINED), metadata={"note": "bench: random init"})
from search.training import search_onnx_export
search_onnx_export()  # the query towers web workers run (gunicorn refuses to start without them)
from search.indexing import index_rebuild
build = index_rebuild(full=True)
from tests.generation.gaps_helpers import tiny_checkpoint
tiny_checkpoint(Path(settings.GAN_ROOT))
from django.contrib.auth import get_user_model
from atlas.models import ApiClient, Source
from atlas.api.tokens import api_token_create
user = get_user_model().objects.create_superuser("bench", email="", password="bench-password-x")
_, key = api_token_create(client=ApiClient.objects.create(name="bench", user=user))
source = Source.objects.create(name="Bench uploads", slug="bench-uploads", licence="CC-BY-4.0")
import atlas.models as m
ids = [str(u) for u in m.Image.objects.values_list("public_id", flat=True)[:200]]
print("SETUP=" + json.dumps({"token": key, "images": ids, "index": build.pk, "vectors": build.vector_count}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-qc", sql], check=True, capture_output=True)


def noise_png(seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = (rng.normal(150, 30, (128, 128, 3))).clip(0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(fields: dict, file: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="u.png"\r\nContent-Type: image/png\r\n\r\n'.encode() + file + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Load:
    def __init__(self, base: str, token: str, image_ids: list[str], static: str) -> None:
        self.base, self.token, self.image_ids, self.static = base, token, image_ids, static
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int | str, int]] = defaultdict(lambda: defaultdict(int))
        self.uploaded: list[str] = []
        self.lock = threading.Lock()
        self.seq = iter(range(10**9))

    def request(self, kind: str, path: str, *, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            status, body = f"error: {type(exc).__name__}", b""
        seconds = time.perf_counter() - started
        with self.lock:
            self.samples[kind].append(seconds)
            self.statuses[kind][status] += 1
        return status if isinstance(status, int) else 0, body

    def one(self, rng: random.Random) -> None:
        roll = rng.random()
        auth = {"Authorization": f"Bearer {self.token}"}
        if roll < 0.05:
            self.request("baseline: static file", self.static)
        elif roll < 0.50:
            path = rng.choice(["/", "/conditions/", "/conditions/melanoma/", "/coverage/", "/skin-types/5/",
                               "/search/?condition=psoriasis&skin_type=6", f"/images/{rng.choice(self.image_ids)}/"])
            self.request("browse (pages)", path)
        elif roll < 0.80:
            q = rng.choice(["melanoma on dark skin", "psoriasis", "ringworm", "eczema type V", "acne on brown skin", "scaly patch"])
            self.request("search (page)", "/search/?" + urllib.parse.urlencode({"q": q}))
        elif roll < 0.92:
            q = rng.choice(["melanoma", "vitiligo on dark skin", "psoriasis type VI"])
            self.request("search (API)", "/api/v1/search/?" + urllib.parse.urlencode({"q": q}), headers=auth)
        else:
            body, ctype = multipart({"condition": "melanoma", "source": "bench-uploads", "fitzpatrick_type": "5"},
                                    noise_png(next(self.seq) + 1000 * os.getpid()))
            status, answer = self.request("upload (API)", "/api/v1/uploads/", data=body, headers={**auth, "Content-Type": ctype})
            if status == 201:
                with self.lock:
                    self.uploaded.append(json.loads(answer)["public_id"])

    def client(self, seed: int, until: float) -> None:
        rng = random.Random(seed)
        while time.monotonic() < until:
            self.one(rng)


def embedding_cost() -> None:
    """CPU time per image to embed (preprocess + image tower), 1 torch thread, batch 32, 256 px
    inputs: the small default model and ViT-B-32 (random weights: speed does not depend on them)."""
    import numpy as np
    import open_clip
    import torch
    from PIL import Image

    from search.encoder import register_model_configs

    torch.set_num_threads(1)
    register_model_configs()
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (256, 256, 3), dtype=np.uint8)) for i in range(64)]
    for name in ("atlas-clip-tiny", "atlas-clip-rn", "ViT-B-32"):
        model, _, preprocess = open_clip.create_model_and_transforms(name)
        model.eval()
        with torch.no_grad():
            model.encode_image(torch.stack([preprocess(im) for im in images[:8]]))  # warm-up
            cpu, wall = time.process_time(), time.perf_counter()
            for start in range(0, 64, 32):
                vectors = model.encode_image(torch.stack([preprocess(im) for im in images[start : start + 32]]))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"{name}: dim {vectors.shape[1]}, {cpu / 64 * 1000:.1f} ms CPU per image, {wall / 64 * 1000:.1f} ms wall, load {os.getloadavg()[0]:.1f}")


def main() -> None:
    import urllib.parse  # noqa: F401 - used by Load

    if "--embedding-cost" in sys.argv:
        embedding_cost()
        return

    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--web-workers", type=int, default=3)
    args = parser.parse_args()
    # Started in the background, SIGINT may be ignored: make SIGTERM stop everything cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))

    var = Path("/tmp/atlas-ops-bench")
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{DB}"')
    redis_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "atlas.settings.local", "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1",
        "ATLAS_VAR_DIR": str(var), "DATABASE_URL": f"{PG}/{DB}", "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "API_THROTTLE_BURST": "100000/min", "API_THROTTLE_SUSTAINED": "10000000/day",
        "API_THROTTLE_ANON_BURST": "100000/min", "API_THROTTLE_ANON_SUSTAINED": "10000000/day",
        "API_CONTRIBUTOR_UPLOADS_PUBLIC": "true", "ATLAS_GAN_THREADS": "1", "SEARCH_TORCH_THREADS": "1",
        "ATLAS_GATES": "none",  # its tiny generator has no classifier or encoder index to be judged by
        "GUNICORN_TIMEOUT": "120", "GUNICORN_BIND": f"127.0.0.1:{web_port}", "WEB_CONCURRENCY": str(args.web_workers), "GUNICORN_ACCESS_LOG": "",
        "PROMETHEUS_MULTIPROC_DIR": str(var / "prometheus"), "LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    procs: list[subprocess.Popen] = []
    logs = var / "logs"
    logs.mkdir()

    def start(name: str, *command: str) -> None:
        procs.append(subprocess.Popen(["nice", *command], cwd=ROOT, env=env, stdout=open(logs / f"{name}.log", "w"), stderr=subprocess.STDOUT))

    try:
        start("redis", "redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(var))
        print("setting up (seed_demo, models, index) ...", flush=True)
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP.replace("IMAGES", str(args.images))],
                             cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(out.stdout[-3000:] + out.stderr[-3000:])
        setup = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("SETUP=")).removeprefix("SETUP="))
        print(f"setup {time.monotonic() - t0:.0f} s: {setup['vectors']} vectors indexed", flush=True)
        bin_dir = Path(sys.executable).parent
        start("web", str(bin_dir / "gunicorn"), "-c", "scripts/gunicorn.conf.py", "atlas.wsgi")
        start("worker", str(bin_dir / "celery"), "-A", "atlas", "worker", "-Q", "default,indexing", "-c", "1", "--prefetch-multiplier", "1", "-n", "web@%h")
        start("gpu", str(bin_dir / "celery"), "-A", "atlas", "worker", "-Q", "generation", "-c", "1", "--prefetch-multiplier", "1", "-n", "gpu@%h")
        base = f"http://127.0.0.1:{web_port}"
        static = "/static/" + next(p.relative_to(var / "static").as_posix() for p in sorted((var / "static").rglob("*.css")))
        for _ in range(240):
            try:
                urllib.request.urlopen(base + static, timeout=30)
                break
            except OSError:  # not listening yet, or a worker still importing
                time.sleep(0.5)
        load = Load(base, setup["token"], setup["images"], static)
        for path in ("/", "/search/?q=melanoma", "/api/v1/search/?q=melanoma"):  # each gunicorn worker loads lazily
            for _ in range(args.web_workers * 2):
                load.request("warm-up", path, headers={"Authorization": f"Bearer {setup['token']}"})
        load.samples.pop("warm-up", None)
        load.statuses.pop("warm-up", None)

        loadavg_before = os.getloadavg()
        body = json.dumps({"target": 3, "fitzpatrick": [5, 6], "condition": ["melanoma", "psoriasis", "acne", "vitiligo"], "seed": 1}).encode()
        status, answer = load.request("start generation job (API)", "/api/v1/generation/jobs/", data=body,
                                      headers={"Authorization": f"Bearer {setup['token']}", "Content-Type": "application/json"})
        job = json.loads(answer) if status == 201 else {"error": answer.decode()[:300]}
        print(f"generation job: {status} {job.get('id', job)}", flush=True)
        until = time.monotonic() + args.duration
        started = time.monotonic()
        threads = [threading.Thread(target=load.client, args=(i, until)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        loadavg_after = os.getloadavg()
        time.sleep(5)  # let the after-ingest embedding tasks settle
        check = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "import json,sys; from atlas.models import Image; from generation.models import GenerationJob; "
             f"ids={json.dumps(load.uploaded)}; found=Image.objects.filter(public_id__in=ids).count(); "
             "j=GenerationJob.objects.order_by('-id').first(); "
             "print('CHECK='+json.dumps({'found': found, 'job': j and [j.status, j.stored_total, j.planned_total]}))"],
            cwd=ROOT, env=env, capture_output=True, text=True)
        verdict = json.loads(next(x for x in check.stdout.splitlines() if x.startswith("CHECK=")).removeprefix("CHECK="))
        report(load, wall, args, loadavg_before, loadavg_after, verdict, setup)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


def report(load: Load, wall: float, args, before, after, verdict: dict, setup: dict) -> None:
    base = statistics.median(load.samples["baseline: static file"])
    total = sum(len(v) for v in load.samples.values())
    fivexx = sum(n for kind in load.statuses.values() for s, n in kind.items() if isinstance(s, int) and s >= 500)
    errors = sum(n for kind in load.statuses.values() for s, n in kind.items() if not isinstance(s, int))
    print(f"\n{args.clients} clients, {wall:.0f} s, {total} requests ({total / wall:.1f} req/s), "
          f"load average {before[0]:.1f} before / {after[0]:.1f} after; {setup['vectors']} images indexed")
    print("| request | count | statuses | p50 ms | p95 ms | p99 ms | p50 / baseline p50 |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for kind in sorted(load.samples, key=lambda k: (not k.startswith("baseline"), k)):
        xs = sorted(load.samples[kind])
        q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000  # noqa: E731
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(load.statuses[kind].items(), key=str))
        print(f"| {kind} | {len(xs)} | {statuses} | {q(0.5):.0f} | {q(0.95):.0f} | {q(0.99):.0f} | {statistics.median(xs) / base:.0f}x |")
    print(f"\n5xx responses: {fivexx}; connection errors: {errors}")
    print(f"uploads answered 201: {len(load.uploaded)}; found in the database afterwards: {verdict['found']} "
          f"(lost: {len(load.uploaded) - verdict['found']})")
    print(f"generation job (status, stored, planned): {verdict['job']}")


if __name__ == "__main__":
    main()
