"""REST API throughput and latency under 16 concurrent clients (wrk), gunicorn on PostgreSQL.

    apt-get install -y wrk          # once (Debian/Ubuntu package "wrk")
    .venv/bin/python bench/bench_api.py [--images 3000] [--rounds 3] [--seconds 10] [--reuse]

Sets up its own PostgreSQL database (atlas_api_bench) and var dir (/tmp/atlas-api-bench):
migrate, seed_demo, a random-initialised atlas-clip-tiny checkpoint (the same network and so
the same cost per query as the trained one; ranking quality does not matter here), reindex.
Then serves the API with gunicorn (sync workers) on loopback and runs wrk with 16
connections against, in alternating rounds:

- baseline: GET /api/v1/licences/ (token auth + throttling + JSON, no catalogue query), the
  floor of any API request on this machine in this run;
- images list: psoriasis on Fitzpatrick V-VI (33 images in the demo atlas, whose melanoma V-VI
  cells are empty by design), one page, with absolute URLs;
- images list, unfiltered, first page of 50;
- text search: k=20 over a few rotating queries (text embedding + FAISS + rows).

Prints a Markdown table (medians over rounds) and the load average, for docs/benchmarks.md.
Requests carry an API token with throttling raised out of the way (the limits are tested
elsewhere); every non-2xx answer is counted and reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from wrk_report import search_lua, wrk_stats  # bench/ is the script's directory, so on sys.path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
# Overridable so two people can bench on one machine without sharing a database.
DB = os.environ.get("BENCH_API_DB", "atlas_api_bench")
VAR = Path(os.environ.get("BENCH_API_VAR", "/tmp/atlas-api-bench"))
PORT = 8765
QUERIES = ["melanoma on dark skin", "psoriasis", "itchy red rash", "ringworm on the arm", "vitiligo type v"]
TARGETS = {
    "baseline: licences": "/api/v1/licences/",
    "images: psoriasis, Fitzpatrick V-VI": "/api/v1/images/?condition=psoriasis&fitzpatrick=5&fitzpatrick=6",
    "images: unfiltered": "/api/v1/images/",
    "text search, k=20": "lua",
}


def env() -> dict[str, str]:
    rates = "1000000/min"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "atlas.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "ATLAS_VAR_DIR": str(VAR),
        "SEARCH_CLIP_PRETRAINED": str(VAR / "clip" / "tiny.pt"),
        "SEARCH_CLIP_DEVICE": "cpu",
        "API_THROTTLE_BURST": rates,
        "API_THROTTLE_SUSTAINED": rates,
        "API_THROTTLE_ANON_BURST": rates,
        "API_THROTTLE_ANON_SUSTAINED": rates,
        "LOG_LEVEL": "WARNING",
    }


def manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env(), check=True, text=True,
                            capture_output=capture)
    return result.stdout if capture else ""


def setup(images: int) -> None:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    subprocess.run(["rm", "-rf", str(VAR)], check=True)
    manage("migrate", "--noinput", "-v", "0")
    started = time.monotonic()
    manage("seed_demo", "--images", str(images))
    print(f"seed_demo: {time.monotonic() - started:.0f} s", file=sys.stderr)
    manage("shell", "-c", (
        "import open_clip, torch; from pathlib import Path; from django.conf import settings;"
        "from search.encoder import register_model_configs; from search.clip_train import save_checkpoint;"
        "register_model_configs(); torch.manual_seed(0); path = Path(settings.SEARCH_CLIP_PRETRAINED);"
        "path.parent.mkdir(parents=True, exist_ok=True);"
        "save_checkpoint(open_clip.create_model(settings.SEARCH_CLIP_MODEL), path, metadata={'note': 'random init, bench_api'})"
    ))
    manage("search_export_onnx")  # the query towers web workers run
    manage("reindex", "--full")
    # Fresh tables have no planner statistics until autovacuum gets to them.
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", "ANALYZE", DB], check=True)


def token() -> str:
    out = manage("shell", "-c", (
        "from atlas.models import ApiClient; from atlas.api.tokens import api_token_create;"
        "client, _ = ApiClient.objects.get_or_create(name='bench');"
        "print(api_token_create(client=client, name='bench')[1])"
    ), capture=True)
    return out.strip().splitlines()[-1]


def serve(workers: int) -> subprocess.Popen:
    server = subprocess.Popen(
        # --preload: Django and its imports load once, before the fork (slow on a busy machine).
        [GUNICORN, "atlas.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{PORT}", "--log-level", "warning",
         "--preload", "--timeout", "120"],
        cwd=ROOT, env=env(),
    )
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/licences/", timeout=2)
                return server
            except OSError:
                time.sleep(0.5)
        raise SystemExit("gunicorn did not come up")
    except BaseException:
        server.terminate()
        raise


def run_wrk(path: str, key: str, seconds: int, script: str | None) -> dict:
    cmd = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", script, f"http://127.0.0.1:{PORT}/"]
    else:
        cmd += ["-H", f"Authorization: Bearer {key}", f"http://127.0.0.1:{PORT}{path}"]
    out = subprocess.run(cmd, check=True, text=True, capture_output=True).stdout
    stats = wrk_stats(out)
    return {k: stats[k] for k in ("rps", "p50", "p99", "non_2xx", "socket_errors", "requests")}


CPU_SNIPPET = """
import json, time
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION="Bearer " + KEY)
out = {}
for name, path in TARGETS.items():
    urls = ["/api/v1/search/?k=20&q=" + q for q in QUERIES] if path == "lua" else [path]
    for url in urls:
        assert client.get(url).status_code == 200, url  # warm: model loaded, caches filled
    started = time.process_time()
    for i in range(REPEATS):
        client.get(urls[i % len(urls)])
    out[name] = (time.process_time() - started) / REPEATS * 1000
print("CPU" + json.dumps(out))
"""


def cpu_per_request(key: str, repeats: int = 40) -> dict[str, float]:
    """CPU milliseconds per request in one process (Django test client, no HTTP server): what a
    request costs on a core, whatever the load; wall times depend on the share of the cores."""
    code = f"KEY={key!r}\nREPEATS={repeats}\nTARGETS={TARGETS!r}\nQUERIES={[q.replace(' ', '+') for q in QUERIES]!r}\n"
    out = manage("shell", "-c", code + CPU_SNIPPET, capture=True)
    return json.loads(next(line for line in out.splitlines() if line.startswith("CPU"))[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4 = 2 per core)")
    parser.add_argument("--reuse", action="store_true", help="keep the database and var dir of a previous run")
    args = parser.parse_args()

    if not args.reuse:
        setup(args.images)
    key = token()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(search_lua(QUERIES, key))
    server = serve(args.workers)
    load_before = os.getloadavg()
    results: dict[str, list[dict]] = {name: [] for name in TARGETS}
    try:
        for name, path in TARGETS.items():  # warm-up: models loaded, caches filled, in every worker
            run_wrk(path, key, args.seconds, handle.name if path == "lua" else None)
        for round_number in range(args.rounds):
            for name, path in TARGETS.items():
                result = run_wrk(path, key, args.seconds, handle.name if path == "lua" else None)
                results[name].append(result)
                print(f"round {round_number + 1} {name}: {result}", file=sys.stderr)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        os.unlink(handle.name)
    load_after = os.getloadavg()
    cpu = cpu_per_request(key)

    baseline = statistics.median(r["rps"] for r in results["baseline: licences"])
    print(f"\n{args.images} demo images, gunicorn {args.workers} sync workers, wrk -t2 -c16, "
          f"{args.rounds} rounds x {args.seconds} s, medians; load average before {load_before[0]:.1f}, "
          f"after {load_after[0]:.1f}\n")
    print("| endpoint | requests/s | vs baseline | p50 (ms) | p99 (ms) | non-2xx | CPU per request (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, rows in results.items():
        rps = statistics.median(r["rps"] for r in rows)
        p50 = statistics.median(r["p50"] for r in rows)
        p99 = statistics.median(r["p99"] for r in rows)
        bad = sum(r["non_2xx"] for r in rows)
        print(f"| {name} | {rps:.0f} | {rps / baseline:.2f} | {p50:.0f} | {p99:.0f} | {bad} | {cpu[name]:.1f} |")


if __name__ == "__main__":
    main()
