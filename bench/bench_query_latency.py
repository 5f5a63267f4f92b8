"""Query latency p50/p99 of two versions of the code, in one run, on the same demo atlas.

    ATLAS_VAR_DIR=/tmp/atlas-search nice .venv/bin/python bench/bench_query_latency.py \
        --before /path/to/old/checkout [--after .] [--rounds 2]

Each version answers the same text queries (search_text, k=24: what a search page asks) and
photo queries (search_image, k=24) in its own process, with the same model, database and
index; the versions take turns (before, after, before, after, ...) so a change in machine
load hits both alike. Text queries mix condition names, everyday phrases, misspellings and
free descriptions; photos are fresh procedural photos (never in the atlas).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")
import django
django.setup()
import numpy as np
if os.path.exists("search/query.py"):
    from search.query import search_image, search_text
else:  # before the split of search/services.py
    from search.services import search_image, search_text
import search
assert search.__file__.startswith(os.getcwd()), search.__file__  # this checkout's code, not an installed one
from atlas.demo.render import render_case

texts = json.loads(sys.argv[1])
photos = [render_case(condition=c, fitzpatrick_type=t, seed=7_000_000 + i)[0].jpeg
          for i, (c, t) in enumerate(json.loads(sys.argv[2]))]
search_text(query=texts[0], k=24)  # warm: model, index, database connection
search_image(data=photos[0], k=24)

def timed(fn, items):
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - started)
    return out

text = timed(lambda q: search_text(query=q, k=24), texts)
photo = timed(lambda d: search_image(data=d, k=24), photos)
print("RESULT=" + json.dumps({"text": text, "photo": photo}))
"""

CONDITIONS = ["acne", "melanoma", "psoriasis", "eczema", "tinea", "vitiligo", "urticaria", "lentigo", "cyst", "skin-tag"]
TEXTS = [
    "{name} on dark skin", "{name}", "{name} type V", "{name} on light skin", "a mole that changed shape",
    "white patches on skin", "melanomma", "psoraisis on the elbow", "an itchy red rash on the arm",
    "a brown spot on the cheek", "nothing to do with skin: a red car", "ringworm on very dark skin",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="Checkout of the older code.")
    parser.add_argument("--after", default=str(Path(__file__).resolve().parent.parent), help="Checkout of the newer code.")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    names = {"acne": "acne", "melanoma": "melanoma", "psoriasis": "psoriasis", "eczema": "eczema", "tinea": "tinea",
             "vitiligo": "vitiligo", "urticaria": "hives", "lentigo": "age spot", "cyst": "cyst", "skin-tag": "skin tag"}  # fmt: skip
    texts = [t.format(name=names[c]) for c in CONDITIONS for t in TEXTS[:4]] + TEXTS[4:] * 3
    photos = [(c, t) for c in CONDITIONS for t in (2, 5)]
    times: dict[str, dict[str, list[float]]] = {"before": {"text": [], "photo": []}, "after": {"text": [], "photo": []}}
    for _ in range(args.rounds):
        for label, tree in (("before", args.before), ("after", args.after)):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, json.dumps(texts), json.dumps(photos)],
                cwd=tree, env=os.environ, capture_output=True, text=True,
            )
            if out.returncode:
                sys.exit(f"{label} ({tree}) failed:\n{out.stderr[-3000:]}")
            out = out.stdout
            result = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT=")).removeprefix("RESULT="))
            for kind in ("text", "photo"):
                times[label][kind] += result[kind]
    import numpy as np

    print(f"{len(texts)} text and {len(photos)} photo queries per round, {args.rounds} rounds, k=24; {os.cpu_count()} CPUs shared with other jobs\n")
    print("| queries | before p50 | before p99 | after p50 | after p99 | after / before (p50) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind in ("text", "photo"):
        b, a = (np.array(times[label][kind]) * 1000 for label in ("before", "after"))
        print(f"| {kind} ({len(a)}) | {np.percentile(b, 50):.1f} ms | {np.percentile(b, 99):.1f} ms | "
              f"{np.percentile(a, 50):.1f} ms | {np.percentile(a, 99):.1f} ms | {np.percentile(a, 50) / np.percentile(b, 50):.2f} |")


if __name__ == "__main__":
    main()
