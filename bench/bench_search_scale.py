"""End-to-end `GET /api/v1/search/?q=...` at 1M images: exact search beside the shipped layout, one run.

    apt-get install -y wrk          # once
    nice -n 15 .venv/bin/python bench/bench_search_scale.py --images 1000000 [--reuse]

Set-up (under var/bench-search-scale; --reuse skips it): its own PostgreSQL database
(atlas_search_scale_bench), migrate, seed_demo (--demo images), a random-initialised
SEARCH_CLIP_MODEL checkpoint (the same network and cost per query as the trained one; the
ranking's quality is bench_search_quality.py's business), reindex. The catalogue is then
grown to --images rows in SQL: copies of the demo rows (same condition, skin type, source,
licence; new public id and hash; external_id "bench:<parent id>"), so filters and boosts
select realistic shares of it. Image id i gets row i-1 of bench_index.py's clustered vectors
(bench/index_data.py, dim = the model's), and the two index files bench_index.py built from
them (exact and --layout; built here if missing) are published, each in its own
SEARCH_INDEX_DIR: the end-to-end table and the layout table describe the same files.

Two gunicorn servers (4 sync workers each, --preload, DEBUG off, throttles raised), one per
index, answer wrk in alternating rounds (exact, chosen, exact, ...) with 4 and then 16
connections, rotating text queries that mix plain words and condition / skin-type words
(boosted tiers, which filter). After the rounds: each worker's memory from
/proc/<pid>/smaps_rollup (USS = private pages; the index file's pages are shared).
Prints a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from wrk_report import search_lua, wrk_stats  # bench/ is the script's directory, so on sys.path

ROOT = Path(__file__).resolve().parent.parent
PY = "/work/main/.venv/bin/python" if not (ROOT / ".venv").exists() else str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(Path(PY).parent / "gunicorn")
DB = "atlas_search_scale_bench"
VAR = ROOT / "var" / "bench-search-scale"
CACHE = ROOT / "var" / "bench-index"
PORTS = {"exact": 8771, "chosen": 8772}
QUERIES = [
    "melanoma on dark skin", "itchy red rash", "psoriasis", "a brown spot on the cheek", "ringworm on the arm",
    "white patches on skin", "vitiligo type v", "a mole that changed shape", "eczema on very dark skin", "acne",
]  # fmt: skip


def env(index_dir: Path | None = None) -> dict[str, str]:
    rates = "100000000/min"
    out = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "atlas.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "ATLAS_VAR_DIR": str(VAR),
        "SEARCH_CLIP_PRETRAINED": str(VAR / "clip" / "random.pt"),
        "SEARCH_CLIP_DEVICE": "cpu",
        "API_THROTTLE_BURST": rates,
        "API_THROTTLE_SUSTAINED": rates,
        "API_THROTTLE_ANON_BURST": rates,
        "API_THROTTLE_ANON_SUSTAINED": rates,
        "LOG_LEVEL": "WARNING",
    }
    if index_dir is not None:
        out["SEARCH_INDEX_DIR"] = str(index_dir)
    return out


def manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env(), check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


GROW = r"""
import json, math, os, sys, time
import numpy as np
from django.db import connection
from atlas.models import Image
from search.index import IndexStore
from search.indexing import encoder_get, stored_vectors

sys.path.insert(0, "bench")
from bench_index import built
from index_data import dataset

started = time.monotonic()
encoder = encoder_get()
version, dim = encoder.version, encoder.embed_texts(["x"]).shape[1]
ids, _ = stored_vectors(version)
extra = TARGET - Image.objects.count()
columns = [f.column for f in Image._meta.concrete_fields if f.column != "id"]
computed = {
    "public_id": "gen_random_uuid()",
    "sha256": "md5(random()::text || g::text || src.id::text) || md5(random()::text)",
    "external_id": "'bench:' || src.id::text",
    "created_at": "now()",
    "updated_at": "now()",
}
select = ", ".join(computed.get(c, f"src.{c}") for c in columns)
with connection.cursor() as cursor:
    cursor.execute(
        f"INSERT INTO atlas_image ({', '.join(columns)}) SELECT {select} FROM atlas_image src "
        f"CROSS JOIN generate_series(1, %s) g WHERE src.id = ANY(%s) ORDER BY g, src.id LIMIT %s",
        [math.ceil(extra / len(ids)), list(map(int, ids)), extra],
    )
    cursor.execute("VACUUM ANALYZE atlas_image")  # what autovacuum leaves: the visibility map index-only scans need
    cursor.execute("SELECT min(id), max(id), count(*) FROM atlas_image")
    low, high, count = cursor.fetchone()
assert (low, high, count) == (1, TARGET, TARGET), f"image ids must be 1..{TARGET} to match the vectors, got {low}..{high} ({count})"
grown = time.monotonic() - started
# The vectors of bench_index.py (row i = image id i + 1) and the index files it built, so this
# table and the layout table describe the same index.
vectors, _, _ = dataset(TARGET, dim)
row_ids = np.arange(1, TARGET + 1, dtype=np.int64)
builds = {}
for name, layout in (("exact", "exact"), ("chosen", LAYOUT)):
    path = CACHE / f"{layout}-n{TARGET}-d{dim}.idx"
    for _ in range(720):  # a bench_index.py run may be building it right now: wait for it (up to 2 h)
        if path.with_suffix(".json").exists() or not WAIT:
            break
        time.sleep(10)
    builds[name] = {"layout": layout, **built(layout, vectors, row_ids, path, False, print)}
    directory = VAR / f"index-{name}"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "index-000001.faiss"
    target.unlink(missing_ok=True)
    os.link(path, target)
    manifest = json.loads(__import__("bench_index")._manifest(target))
    store = IndexStore(directory)
    with store.publishing():
        store.swap({"version": 1, "file": target.name, "model_version": version, "count": TARGET, "kind": manifest["kind"],
                    "nlist": manifest["nlist"], "nprobe": NPROBE or manifest["nprobe"], "published": time.time()})
    builds[name].update(kind=manifest["kind"], nlist=manifest["nlist"], nprobe=NPROBE or manifest["nprobe"], codes=manifest["codes"])
print("GROW=" + json.dumps({"images": int(Image.objects.count()), "vectors": TARGET, "dim": int(dim), "grow_s": grown, "builds": builds}))
"""


def setup(images: int, demo: int, layout: str, nprobe: int, wait: bool) -> dict:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    subprocess.run(["rm", "-rf", str(VAR)], check=True)
    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo", "--images", str(demo))
    manage("shell", "-c", (
        "import open_clip, torch; from pathlib import Path; from django.conf import settings;"
        "from search.encoder import register_model_configs; from search.clip_train import save_checkpoint;"
        "register_model_configs(); torch.manual_seed(0); path = Path(settings.SEARCH_CLIP_PRETRAINED);"
        "path.parent.mkdir(parents=True, exist_ok=True);"
        "save_checkpoint(open_clip.create_model(settings.SEARCH_CLIP_MODEL), path, metadata={'note': 'random init, bench_search_scale'})"
    ))
    manage("search_export_onnx")  # web workers embed queries with ONNX Runtime, not torch
    manage("reindex", "--full")
    head = (f"from pathlib import Path\nTARGET = {images}\nVAR = Path({str(VAR)!r})\nCACHE = Path({str(CACHE)!r})\n"
            f"LAYOUT = {layout!r}\nNPROBE = {nprobe}\nWAIT = {wait}\n")
    out = manage("shell", "-c", head + GROW, capture=True)
    grown = json.loads(next(x for x in out.splitlines() if x.startswith("GROW=")).removeprefix("GROW="))
    (VAR / "grow.json").write_text(json.dumps(grown))
    return grown


def serve(name: str, workers: int) -> subprocess.Popen:
    port = PORTS[name]
    server = subprocess.Popen(
        [GUNICORN, "atlas.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--preload", "--timeout", "120"],
        cwd=ROOT, env=env(VAR / f"index-{name}"),
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/licences/", timeout=2)
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"gunicorn for {name} exited with {server.returncode}")
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"gunicorn for {name} did not come up")


def run_wrk(port: int, clients: int, seconds: int, script: str) -> dict:
    cmd = ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", script, f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, check=True, text=True, capture_output=True).stdout
    stats = wrk_stats(out)
    return {k: stats[k] for k in ("rps", "p50", "p90", "p99", "non_2xx", "requests")}


def memory(server: subprocess.Popen, index_dir: Path) -> list[dict]:
    """Per worker: RSS, PSS, USS (private pages) and the resident pages of the mapped index file."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.pid)], text=True, capture_output=True).stdout.split()
    rows = []
    for pid in children:
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, value = line.split(":", 1)
            fields[key] = int(value.split()[0]) / 1024
        mapped, current = 0.0, False
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                current = str(index_dir) in line
            elif current and line.startswith("Rss:"):
                mapped += int(line.split()[1]) / 1024
        rows.append({"pid": int(pid), "rss_mb": fields["Rss"], "pss_mb": fields["Pss"],
                     "uss_mb": fields["Private_Clean"] + fields["Private_Dirty"], "index_mapped_mb": mapped})
    return rows


CPU_SNIPPET = """
import json, time
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
urls = ["/api/v1/search/?k=20&q=" + q.replace(" ", "+") for q in QUERIES]
for url in urls:
    assert client.get(url).status_code == 200, url  # warm: model and index loaded
started, wall = time.process_time(), time.perf_counter()
for i in range(REPEATS):
    client.get(urls[i % len(urls)])
print("CPU" + json.dumps({"cpu_ms": (time.process_time() - started) / REPEATS * 1000,
                          "wall_ms": (time.perf_counter() - wall) / REPEATS * 1000}))
"""


def cpu_per_request(name: str, repeats: int) -> dict:
    """CPU milliseconds per search request in one process (Django test client, no HTTP server):
    what a request costs a core whatever the machine's load; the wall time depends on the share."""
    code = f"QUERIES = {QUERIES!r}\nREPEATS = {repeats}\n" + CPU_SNIPPET
    out = subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=env(VAR / f"index-{name}"),
                         check=True, text=True, capture_output=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("CPU"))[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--demo", type=int, default=300, help="seed_demo images the catalogue is grown from")
    parser.add_argument("--layout", default="ivf-sq8", help="bench_index.py layout served beside exact")
    parser.add_argument("--nprobe", type=int, default=0, help="nprobe of the served layout (0: the file's)")
    parser.add_argument("--wait-for-build", action="store_true", help="wait for a bench_index.py run building the layout's file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--reuse", action="store_true", help="keep the database, vectors and indexes of a previous run")
    parser.add_argument("--cpu-only", action="store_true", help="only CPU per request, in one process, for each index")
    parser.add_argument("--cpu-repeats", type=int, default=100)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if args.cpu_only:
        rounds = {name: [] for name in PORTS}
        for _ in range(2):  # alternating, so a change in load hits both
            for name in PORTS:
                rounds[name].append(cpu_per_request(name, args.cpu_repeats))
        print("| index | CPU ms per request (2 runs) | wall ms per request, one process |")
        print("| --- | --- | --- |")
        for name, runs in rounds.items():
            cpu, wall = (" / ".join(f"{r[key]:.1f}" for r in runs) for key in ("cpu_ms", "wall_ms"))
            print(f"| {name} | {cpu} | {wall} |")
        print("JSON " + json.dumps(rounds))
        return

    grown = json.loads((VAR / "grow.json").read_text()) if args.reuse else setup(args.images, args.demo, args.layout, args.nprobe, args.wait_for_build)
    if args.nprobe:  # serve the chosen layout at this nprobe (the pointer's value is what LiveIndex loads with)
        pointer_path = VAR / "index-chosen" / "CURRENT.json"
        pointer = json.loads(pointer_path.read_text())
        pointer_path.write_text(json.dumps({**pointer, "nprobe": args.nprobe}))
        grown["builds"]["chosen"]["nprobe"] = args.nprobe
    print(f"catalogue: {grown['images']:,} images, {grown['vectors']:,} vectors; builds {json.dumps(grown['builds'])}", file=sys.stderr)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(search_lua(QUERIES))
    servers = {name: serve(name, args.workers) for name in PORTS}
    load_before = os.getloadavg()
    results: dict[tuple[str, int], list[dict]] = {}
    try:
        for name in PORTS:  # warm-up: the model and the index loaded in every worker
            run_wrk(PORTS[name], args.workers * 2, 20, handle.name)
        for clients in args.clients:
            for round_number in range(args.rounds):
                for name in PORTS:
                    result = run_wrk(PORTS[name], clients, args.seconds, handle.name)
                    results.setdefault((name, clients), []).append(result)
                    print(f"round {round_number + 1} {name} c{clients}: {result}", file=sys.stderr)
        mem = {name: memory(server, VAR / f"index-{name}") for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        os.unlink(handle.name)
    load_after = os.getloadavg()
    files = {name: sum(p.stat().st_size for p in (VAR / f"index-{name}").glob("index-*.faiss")) / 2**20 for name in PORTS}

    print(f"\n{grown['images']:,} images ({grown['vectors']:,} vectors), gunicorn {args.workers} sync workers per index, "
          f"wrk, {args.rounds} rounds x {args.seconds} s alternating, medians; load average before {load_before[0]:.1f}, after {load_after[0]:.1f}\n")
    print("| index | clients | requests/s | p50 ms | p90 ms | p99 ms | non-2xx | vs exact (req/s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    summary = {}
    for (name, clients), rows in results.items():
        med = {key: statistics.median(r[key] for r in rows) for key in ("rps", "p50", "p90", "p99")}
        med["non_2xx"] = sum(r["non_2xx"] for r in rows)
        summary[f"{name}-c{clients}"] = med
    for (name, clients) in results:
        med = summary[f"{name}-c{clients}"]
        ratio = med["rps"] / summary[f"exact-c{clients}"]["rps"]
        chosen = grown["builds"]["chosen"]
        label = "exact (flat)" if name == "exact" else f"{chosen['kind']} {chosen['codes']}, {chosen['nlist']} lists, nprobe {chosen['nprobe']}"
        print(f"| {label} | {clients} | {med['rps']:.1f} | {med['p50']:.0f} | {med['p90']:.0f} | {med['p99']:.0f} | {med['non_2xx']} | {ratio:.1f}x |")
    print("\n| index | index file MB (mapped once per host) | build s | per worker: USS MB | RSS MB | index pages resident in the worker's map MB |")
    print("| --- | ---: | ---: | --- | --- | --- |")
    for name in PORTS:
        workers = mem[name]
        uss, rss, mapped = (", ".join(f"{w[key]:.0f}" for w in workers) for key in ("uss_mb", "rss_mb", "index_mapped_mb"))
        print(f"| {name} | {files[name]:.0f} | {grown['builds'][name]['build_s']:.0f} | {uss} | {rss} | {mapped} |")
    out = {"grown": grown, "load": [load_before, load_after], "summary": summary, "memory": mem, "files_mb": files,
           "rounds": {f"{n}-c{c}": r for (n, c), r in results.items()}}
    print("\nJSON " + json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
