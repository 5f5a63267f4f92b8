"""A web worker's private memory (USS) with the query encoder on torch (before) and on ONNX
Runtime (after), several gunicorn workers each, the index served (docs/benchmarks.md, "Web worker memory").

In a scratch var dir (SQLite): the demo atlas (`seed_demo`), a random-init SEARCH_CLIP_MODEL
checkpoint (memory does not depend on the weights) with its ONNX export, and a published index.
`--extra-vectors N` adds N random unit vectors (ids past the catalogue's) to that index, so the
workers serve an index of that size. Then, for each runtime, gunicorn with scripts/gunicorn.conf.py
and W workers; W client threads send text searches (page and API), photo searches (API), the
images list and "more like this" until every worker has answered each kind, and each worker's
memory is read from /proc (psutil: USS = pages only it maps; PSS shares the others out; RSS
counts them all), with whether torch / onnxruntime are mapped into it.

    nice .venv/bin/python bench/bench_web_memory.py --workers 4
    nice .venv/bin/python bench/bench_web_memory.py --workers 4 --extra-vectors 1000000 --json /tmp/web-memory.json
    nice .venv/bin/python bench/bench_web_memory.py --embedding-cost atlas-clip-rn var/search/clip/atlas-clip-rn.pt
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RUNTIMES = ("torch", "onnx")  # before, after

SETUP = r"""
import json, time
import numpy as np, torch, open_clip
from pathlib import Path
from django.conf import settings
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("seed_demo", images=IMAGES, verbosity=0)
from search.encoder import register_model_configs
from search.clip_train import save_checkpoint
from search.training import search_onnx_export
register_model_configs(); torch.manual_seed(0)
save_checkpoint(open_clip.create_model(settings.SEARCH_CLIP_MODEL), Path(settings.SEARCH_CLIP_PRETRAINED), metadata={"note": "bench: random init"})
search_onnx_export()
from search.indexing import index_rebuild, index_store, stored_vectors, _spec_for
build = index_rebuild(full=True)
vectors, started = build.vector_count, time.monotonic()
if EXTRA:
    from search.index import VectorIndex
    ids, real = stored_vectors(build.model_version)
    rng = np.random.default_rng(0)
    fake = rng.standard_normal((EXTRA, real.shape[1]), dtype=np.float32)
    fake /= np.linalg.norm(fake, axis=1, keepdims=True)
    all_ids = np.concatenate([ids, np.arange(10**8, 10**8 + EXTRA, dtype=np.int64)])
    index = VectorIndex.build(all_ids, np.concatenate([real, fake]), spec=_spec_for(len(all_ids)))
    index_store().publish(index, version=build.pk + 1, model_version=build.model_version)
    vectors = len(index)
from django.contrib.auth import get_user_model
from atlas.models import ApiClient, Image
from atlas.api.tokens import api_token_create
user = get_user_model().objects.create_superuser("bench", email="", password="bench-password-x")
_, key = api_token_create(client=ApiClient.objects.create(name="bench", user=user))
ids = [str(u) for u in Image.objects.values_list("public_id", flat=True)[:50]]
print("SETUP=" + json.dumps({"token": key, "images": ids, "vectors": vectors, "extra_seconds": round(time.monotonic() - started, 1),
                             "index_bytes": sum(p.stat().st_size for p in Path(settings.SEARCH_INDEX_DIR).glob("*.faiss"))}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def photo() -> bytes:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(1).normal(150, 30, (200, 200, 3)).clip(0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def multipart(file: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode() + file + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def request(base: str, path: str, token: str, *, data: bytes | None = None, ctype: str = "") -> tuple[int | str, float]:
    headers = {"Authorization": f"Bearer {token}", **({"Content-Type": ctype} if ctype else {})}
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers), timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        status = f"error: {type(exc).__name__}"
    return status, time.perf_counter() - started


def worker_memory(pid: int) -> dict:
    process = psutil.Process(pid)
    info = process.memory_full_info()
    maps = {m.path for m in process.memory_maps(grouped=True)}
    return {
        "pid": pid, "uss_mb": round(info.uss / 2**20, 1), "pss_mb": round(info.pss / 2**20, 1), "rss_mb": round(info.rss / 2**20, 1),
        "torch_mapped": any("libtorch_cpu" in p for p in maps), "onnxruntime_mapped": any("onnxruntime_pybind11" in p for p in maps),
    }


def serve(runtime: str, env: dict, args, setup: dict, logs: Path) -> dict:
    port = free_port()
    env = {**env, "SEARCH_QUERY_RUNTIME": runtime, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(args.workers)}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    master = subprocess.Popen(["nice", str(gunicorn), "-c", "scripts/gunicorn.conf.py", "atlas.wsgi"], cwd=ROOT, env=env,
                              stdout=open(logs / f"gunicorn-{runtime}.log", "w"), stderr=subprocess.STDOUT)
    base, token = f"http://127.0.0.1:{port}", setup["token"]
    try:
        deadline = time.monotonic() + 600
        while not isinstance(request(base, "/api/v1/conditions/", token)[0], int):
            if master.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn ({runtime}) did not start: see {logs}")
            time.sleep(0.5)
        gunicorn_master = psutil.Process(master.pid)  # `nice` execs gunicorn: same pid
        while len(gunicorn_master.children()) < args.workers:
            time.sleep(0.2)
        body, ctype = multipart(photo())
        kinds = {
            "text search (API)": lambda i: request(base, "/api/v1/search/?" + urllib.parse.urlencode({"q": ["melanoma on dark skin", "psoriasis", "scaly patch"][i % 3]}), token),
            "text search (page)": lambda i: request(base, "/search/?" + urllib.parse.urlencode({"q": "eczema type V"}), token),
            "photo search (API)": lambda i: request(base, "/api/v1/search/", token, data=body, ctype=ctype),
            "more like this (API)": lambda i: request(base, f"/api/v1/similar/{setup['images'][i % len(setup['images'])]}/", token),
            "images list (API)": lambda i: request(base, "/api/v1/images/?page_size=50", token),
        }
        samples: dict[str, list[tuple[int, float]]] = {kind: [] for kind in kinds}

        def client(seed: int) -> None:
            for i in range(args.rounds):
                for kind, send in kinds.items():
                    samples[kind].append(send(seed * 1000 + i))

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        workers = sorted(gunicorn_master.children(), key=lambda p: p.pid)
        memory = [worker_memory(p.pid) for p in workers]
        uss = [m["uss_mb"] for m in memory]
        return {
            "runtime": runtime, "workers": memory, "uss_mb_median": statistics.median(uss), "uss_mb_max": max(uss),
            "pss_mb_sum": round(sum(m["pss_mb"] for m in memory), 1), "rss_mb_median": statistics.median(m["rss_mb"] for m in memory),
            "master_rss_mb": round(gunicorn_master.memory_info().rss / 2**20, 1),
            "requests": {kind: {"statuses": sorted({str(s) for s, _ in xs}), "p50_ms": round(statistics.median(t for _, t in xs) * 1000, 1)}
                         for kind, xs in samples.items()},
        }
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=60)
        except subprocess.TimeoutExpired:
            master.kill()


def embedding_cost(model_name: str, checkpoint: str, rounds: int = 5) -> dict:
    """CPU ms to embed one text query and one photo query, torch against ONNX Runtime, one
    thread each, alternating rounds in one process (process CPU time: others' load mostly cancels)."""
    import numpy as np
    import torch
    from PIL import Image

    from search.encoder import load_encoder
    from search.onnx_runtime import load_onnx_encoder

    torch.set_num_threads(1)
    encoders = {"torch": load_encoder(model_name, checkpoint, "cpu"), "onnx": load_onnx_encoder(model_name, checkpoint, 1)}
    texts = ["melanoma on dark brown skin", "psoriasis", "scaly red patch on the elbow, type V"] * 10
    photos = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (256, 256, 3), dtype=np.uint8)) for i in range(10)]
    cpu = {(name, kind): [] for name in encoders for kind in ("text", "photo")}
    for _ in range(rounds):
        for name, encoder in encoders.items():
            for kind, items, embed in (("text", texts, encoder.embed_texts), ("photo", photos, encoder.embed_images)):
                started = time.process_time()
                for item in items:  # one query at a time, as a web worker embeds them
                    embed([item])
                cpu[(name, kind)].append((time.process_time() - started) / len(items) * 1000)
    result = {f"{name} {kind}": round(statistics.median(xs), 2) for (name, kind), xs in cpu.items()}
    result["model"] = encoders["onnx"].version
    return result


def main() -> None:
    if "--embedding-cost" in sys.argv:  # --embedding-cost MODEL CHECKPOINT
        name, checkpoint = sys.argv[sys.argv.index("--embedding-cost") + 1 : sys.argv.index("--embedding-cost") + 3]
        result = embedding_cost(name, checkpoint)
        print("| query | torch CPU ms | ONNX Runtime CPU ms | ONNX / torch |\n| --- | ---: | ---: | ---: |")
        for kind in ("text", "photo"):
            t, o = result[f"torch {kind}"], result[f"onnx {kind}"]
            print(f"| {kind} | {t:.2f} | {o:.2f} | {o / t:.2f} |")
        print("JSON=" + json.dumps(result))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers per runtime")
    parser.add_argument("--images", type=int, default=400, help="demo atlas size (seed_demo --images)")
    parser.add_argument("--extra-vectors", type=int, default=0, help="random vectors added to the served index")
    parser.add_argument("--rounds", type=int, default=6, help="requests of each kind per client thread")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="which query runtimes to serve, in order (torch = before)")
    parser.add_argument("--reuse", action="store_true", help="keep the scratch var dir of the previous run (same --images, --extra-vectors)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))

    var = Path("/tmp/atlas-web-memory-bench")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SEARCH_", "DATABASE_URL"))},
        "DJANGO_SETTINGS_MODULE": "atlas.settings.local", "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1",
        "ATLAS_VAR_DIR": str(var), "SEARCH_CLIP_DEVICE": "cpu", "SEARCH_FLOOR_TEXT": "0", "SEARCH_FLOOR_IMAGE": "0",
        "API_THROTTLE_BURST": "100000/min", "API_THROTTLE_SUSTAINED": "10000000/day", "API_THROTTLE_PHOTO": "100000/min",
        "CELERY_TASK_ALWAYS_EAGER": "true", "GUNICORN_ACCESS_LOG": "", "LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1",
        "ATLAS_PROMETHEUS_BASE": str(var / "prometheus"), "PYTHONPATH": str(ROOT),
        "GUNICORN_TIMEOUT": "900",  # a worker importing torch on a busy 2-core machine takes minutes
    }
    saved = var / "setup.json"
    if args.reuse and saved.exists():
        setup = json.loads(saved.read_text())
        subprocess.run(["nice", sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)  # the code may have moved on
    else:
        shutil.rmtree(var, ignore_errors=True)
        (var / "logs").mkdir(parents=True)
        print("setting up (seed_demo, model + ONNX export, index) ...", flush=True)
        started = time.monotonic()
        code = SETUP.replace("IMAGES", str(args.images)).replace("EXTRA", str(args.extra_vectors))
        out = subprocess.run(["nice", sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stdout[-3000:] + out.stderr[-3000:])
        setup = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("SETUP=")).removeprefix("SETUP="))
        print(f"setup {time.monotonic() - started:.0f} s", flush=True)
        saved.write_text(json.dumps(setup))
    print(f"{setup['vectors']:,} vectors served ({setup['index_bytes'] / 2**20:.0f} MiB of index files)", flush=True)
    results = [serve(runtime, env, args, setup, var / "logs") for runtime in args.runtimes.split(",")]
    report = {
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "workers": args.workers, "vectors": setup["vectors"], "index_mib": round(setup["index_bytes"] / 2**20, 1),
        "results": results,
    }
    if len(results) == 2:
        report["uss_ratio_onnx_to_torch"] = round(results[1]["uss_mb_median"] / results[0]["uss_mb_median"], 3)
    print_table(report)
    print("JSON=" + json.dumps(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def print_table(report: dict) -> None:
    print(f"\n{report['workers']} gunicorn workers, {report['vectors']:,} vectors served ({report['index_mib']} MiB index); {report['machine']}")
    print("| query runtime | USS per worker, median (max) MiB | PSS all workers MiB | RSS per worker MiB | torch mapped | onnxruntime mapped |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for r in report["results"]:
        torch_in = sum(w["torch_mapped"] for w in r["workers"])
        ort_in = sum(w["onnxruntime_mapped"] for w in r["workers"])
        print(f"| {r['runtime']} | {r['uss_mb_median']:.0f} ({r['uss_mb_max']:.0f}) | {r['pss_mb_sum']:.0f} | {r['rss_mb_median']:.0f} | "
              f"{torch_in} of {len(r['workers'])} | {ort_in} of {len(r['workers'])} |")
    if "uss_ratio_onnx_to_torch" in report:
        print(f"\nUSS ratio, ONNX / torch: {report['uss_ratio_onnx_to_torch']:.2f}")
    print("\n| request | " + " | ".join(f"{r['runtime']} p50 ms (statuses)" for r in report["results"]) + " |")
    print("| --- |" + " ---: |" * len(report["results"]))
    for kind in report["results"][0]["requests"]:
        cells = [f"{r['requests'][kind]['p50_ms']:.0f} ({', '.join(map(str, r['requests'][kind]['statuses']))})" for r in report["results"]]
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
