"""Where a search request's time goes at 1 M images: the database share, before and after.

    nice -n 15 .venv/bin/python bench/bench_search_db.py [--rounds 3] [--json out.json]

Needs bench_search_scale.py's catalogue (run it once; it leaves the 1 M-row database and the
published indexes under var/bench-search-scale). In one Django process, against the served
layout's index, each of that bench's queries is answered by `search_text` (k 20), timing every
SQL statement (`connection.execute_wrapper`): wall, CPU (all threads, `time.process_time`),
time inside the database driver, statement count.

Two variants, alternating per round on the same data, caches warm (each query answered once
before timing, the table's pages in the OS cache):
- **before**: the ranking's database access as it was (every public id of a ranking tier
  fetched as Python objects, ordered by the model's default order; candidates checked with an
  IN list; the skin-type gap computed from every image of the condition; no second post-filter
  round) and without the partial indexes `image_public_by_*` (dropped for the round);
- **after**: the code in search/query.py, with the indexes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search_scale import PY, QUERIES, ROOT, VAR, env  # noqa: E402

SNIPPET = r"""
import json, time
import numpy as np
from django.db import connection
from atlas.filters import ImageFilters, images_filtered
from atlas.models import Image
from search import query

QUERIES, ROUNDS = __QUERIES__, __ROUNDS__
INDEXES = [index for index in Image._meta.indexes if index.name.startswith("image_public_by_")]
after = {"_ids": query._ids, "_passing": query._passing, "_skin_type_gap": query._skin_type_gap,
         "POSTFILTER_MAX_FETCH": query.POSTFILTER_MAX_FETCH}


def old_ids(images):
    return np.fromiter(images.values_list("id", flat=True), dtype=np.int64)


def old_passing(images, ids):
    return set(images.filter(id__in=ids).values_list("id", flat=True))


def old_gap(filters, boost):
    conditions = boost.conditions or filters.conditions
    requested = tuple(t for t in (boost.skin_types or filters.skin_types) if t is not None)
    if not conditions or not requested:
        return None
    present = set(images_filtered(filters.replace(conditions=conditions, skin_types=()))
                  .exclude(fitzpatrick_type__isnull=True).order_by().values_list("fitzpatrick_type", flat=True).distinct())
    if not present or present & set(requested):
        return None
    distance = {t: min(abs(t - r) for r in requested) for t in present}
    closest = min(distance.values())
    return query.SkinTypeGap(conditions=conditions, requested=requested,
                             nearest=tuple(sorted(t for t in present if distance[t] == closest)))


before = {"_ids": old_ids, "_passing": old_passing, "_skin_type_gap": old_gap, "POSTFILTER_MAX_FETCH": 0}


def variant(name):
    for key, value in (before if name == "before" else after).items():
        setattr(query, key, value)
    present = connection.introspection.get_constraints(connection.cursor(), Image._meta.db_table)
    with connection.schema_editor() as editor:  # the model's own index definitions, dropped or made
        for index in INDEXES:
            if name == "before" and index.name in present:
                editor.remove_index(Image, index)
            elif name == "after" and index.name not in present:
                editor.add_index(Image, index)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE atlas_image")


statements = []


def timed(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        statements.append(time.perf_counter() - started)


results = {"before": {q: [] for q in QUERIES}, "after": {q: [] for q in QUERIES}}
try:
    for round_number in range(ROUNDS):
        for name in ("after", "before"):
            variant(name)
            for q in QUERIES:
                query.search_text(query=q, k=20)  # warm: pages, plans, the text vector
            for q in QUERIES:
                statements.clear()
                wall, cpu = time.perf_counter(), time.process_time()
                with connection.execute_wrapper(timed):
                    hits = len(query.search_text(query=q, k=20).hits)
                results[name][q].append({"wall_ms": (time.perf_counter() - wall) * 1000,
                                         "cpu_ms": (time.process_time() - cpu) * 1000,
                                         "db_ms": sum(statements) * 1000, "statements": len(statements), "hits": hits})
finally:
    variant("after")  # leave the catalogue as the migrations made it
print("RESULT" + json.dumps(results))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--index", default="chosen", choices=["chosen", "exact"], help="which published index answers")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if not (VAR / "grow.json").exists():
        sys.exit("no 1 M catalogue: run bench/bench_search_scale.py once first")
    code = SNIPPET.replace("__QUERIES__", repr(QUERIES)).replace("__ROUNDS__", str(args.rounds))
    started = time.monotonic()
    out = subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=env(VAR / f"index-{args.index}"),
                         check=True, text=True, capture_output=True).stdout
    results = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[6:])
    grown = json.loads((VAR / "grow.json").read_text())
    print(f"{grown['images']:,} images, index {args.index} ({grown['builds'][args.index]['kind']}); "
          f"{args.rounds} rounds alternating, medians; {time.monotonic() - started:.0f} s\n")
    print("| query | before: wall / CPU / database ms (statements) | after: wall / CPU / database ms (statements) | wall before / after |")
    print("| --- | --- | --- | ---: |")
    summary = {}
    for q in QUERIES:
        cells = {}
        for name in ("before", "after"):
            runs = results[name][q]
            med = {key: statistics.median(r[key] for r in runs) for key in ("wall_ms", "cpu_ms", "db_ms", "statements")}
            summary.setdefault(name, {})[q] = med
            cells[name] = f"{med['wall_ms']:.0f} / {med['cpu_ms']:.0f} / {med['db_ms']:.0f} ({med['statements']:.0f})"
        ratio = summary["before"][q]["wall_ms"] / summary["after"][q]["wall_ms"]
        print(f"| {q} | {cells['before']} | {cells['after']} | {ratio:.1f}x |")
    for name in ("before", "after"):
        walls = [summary[name][q]["wall_ms"] for q in QUERIES]
        dbs = [summary[name][q]["db_ms"] for q in QUERIES]
        summary[name]["mean"] = {"wall_ms": statistics.mean(walls), "db_ms": statistics.mean(dbs), "max_wall_ms": max(walls)}
    b, a = summary["before"]["mean"], summary["after"]["mean"]
    print(f"| **mean** (max) | {b['wall_ms']:.0f} ({b['max_wall_ms']:.0f}) wall, {b['db_ms']:.0f} database | "
          f"{a['wall_ms']:.0f} ({a['max_wall_ms']:.0f}) wall, {a['db_ms']:.0f} database | {b['wall_ms'] / a['wall_ms']:.1f}x |")
    print("\nJSON " + json.dumps({"summary": summary, "runs": results}))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
