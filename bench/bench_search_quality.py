"""Search quality on the held-out split of the demo atlas (the images train_clip never saw).

    ATLAS_VAR_DIR=/tmp/atlas-search nice .venv/bin/python bench/bench_search_quality.py

Retrieval runs over the held-out images only (exact search over their stored vectors):
- text -> image: for every condition and Fitzpatrick type, the query "CONDITION on TONE skin"
  (TONE = the type's first plain word in atlas/skin.py, e.g. "dark brown"). Reported per
  condition and per skin type: precision@10 of the condition (model alone, no hybrid filter),
  precision@10 of the skin type (exact type, and within one type), and the same skin-type
  precision with the service's hybrid rule (condition named in the text -> filter).
- image -> image: each held-out image queries the others (same case excluded: a second photo
  of the same lesion would be a trivial hit); precision@10 of the same condition.
- photo -> image: fresh procedural photos (new seeds, never in the atlas) through
  search_image against the whole index; top-1 and P@10 of the same condition.
Chance = the share of held-out images with the queried condition / type.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402

from atlas.models import Condition, Image  # noqa: E402
from atlas.skin import FITZPATRICK_TONE_WORDS, roman  # noqa: E402
from search import indexing  # noqa: E402
from search import query as search_query  # noqa: E402
from search.clip_train import is_heldout, metadata_path  # noqa: E402


def main() -> None:
    encoder = indexing.encoder_get()
    meta_file = metadata_path(Path(settings.SEARCH_CLIP_PRETRAINED))
    fraction = json.loads(meta_file.read_text())["config"]["holdout_fraction"] if meta_file.exists() else 0.2
    rows = list(Image.objects.public().values_list("id", "sha256", "condition__slug", "fitzpatrick_type", "case_id"))
    held = [r for r in rows if is_heldout(r[1], fraction)]
    ids, vectors = indexing.stored_vectors(encoder.version, [r[0] for r in held])
    info = {r[0]: r for r in held}
    slugs = np.array([info[i][2] for i in ids])
    types = np.array([info[i][3] or 0 for i in ids])
    cases = np.array([info[i][4] or f"single-{i}" for i in ids])
    print(f"model {encoder.version}; {len(ids)} held-out images of {len(rows)} (fraction {fraction})\n")

    names = dict(Condition.objects.values_list("slug", "name"))
    by_condition: dict[str, list] = defaultdict(list)
    by_type: dict[int, list] = defaultdict(list)
    for slug in sorted(set(slugs)):
        for t in range(1, 7):
            query = f"{names[slug]} on {FITZPATRICK_TONE_WORDS[t][0]} skin"
            q = encoder.embed_texts([query])[0]
            order = np.argsort(-(vectors @ q))[:10]
            cond_p = float(np.mean(slugs[order] == slug))
            type_p = float(np.mean(types[order] == t))
            near_p = float(np.mean(np.abs(types[order] - t) <= 1))
            # Hybrid: the condition name in the text filters; rank that condition's images by the model.
            pool = np.flatnonzero(slugs == slug)
            hybrid = pool[np.argsort(-(vectors[pool] @ q))[:10]]
            has_type = bool(np.any(types[pool] == t))
            hybrid_p = float(np.mean(types[hybrid] == t)) if has_type else float("nan")
            result = (cond_p, type_p, near_p, hybrid_p)
            by_condition[slug].append(result)
            by_type[t].append(result)

    def mean(values) -> float:
        values = [v for v in values if not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")

    print("Text -> image, per condition (mean over the six tones)\n")
    print("| condition | held-out images | P@10 condition (model only) | chance | P@10 skin type (model only) | P@10 skin type +-1 | P@10 skin type (hybrid) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for slug, results in sorted(by_condition.items()):
        share = float(np.mean(slugs == slug))
        print(f"| {slug} | {int(np.sum(slugs == slug))} | {mean(r[0] for r in results):.2f} | {share:.2f} | "
              f"{mean(r[1] for r in results):.2f} | {mean(r[2] for r in results):.2f} | {mean(r[3] for r in results):.2f} |")
    everything = [r for results in by_condition.values() for r in results]
    print(f"| **all** | {len(ids)} | **{mean(r[0] for r in everything):.2f}** | {1 / len(by_condition):.2f} | "
          f"**{mean(r[1] for r in everything):.2f}** | {mean(r[2] for r in everything):.2f} | {mean(r[3] for r in everything):.2f} |")

    print("\nText -> image, per skin type in the query (mean over conditions)\n")
    print("| queried type | held-out images of the type | P@10 condition (model only) | P@10 skin type (model only) | chance | P@10 skin type +-1 | P@10 skin type (hybrid) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for t, results in sorted(by_type.items()):
        print(f"| {roman(t)} ({FITZPATRICK_TONE_WORDS[t][0]}) | {int(np.sum(types == t))} | {mean(r[0] for r in results):.2f} | "
              f"{mean(r[1] for r in results):.2f} | {float(np.mean(types == t)):.2f} | {mean(r[2] for r in results):.2f} | {mean(r[3] for r in results):.2f} |")

    sims = vectors @ vectors.T
    precisions, per_condition = [], defaultdict(list)
    for row in range(len(ids)):
        scores = sims[row].copy()
        scores[cases == cases[row]] = -np.inf  # itself and its case's other photos
        top = np.argsort(-scores)[:10]
        p = float(np.mean(slugs[top] == slugs[row]))
        precisions.append(p)
        per_condition[slugs[row]].append(p)
    print(f"\nImage -> image, same-condition P@10 over {len(ids)} held-out queries: {np.mean(precisions):.2f} "
          f"(chance {float(np.sum([np.mean(slugs == s) ** 2 for s in set(slugs)])):.2f})")
    worst = sorted(per_condition.items(), key=lambda kv: np.mean(kv[1]))
    print("lowest: " + ", ".join(f"{s} {np.mean(v):.2f}" for s, v in worst[:5]))
    print("highest: " + ", ".join(f"{s} {np.mean(v):.2f}" for s, v in worst[-5:]))

    # Fresh photos (never in the atlas) through the service, against the whole index.
    from atlas.demo.render import render_case

    top1, p10, count = [], [], 0
    for number, slug in enumerate(sorted(set(slugs))):
        for t in (1, 3, 5):
            photo = render_case(condition=slug, fitzpatrick_type=t, seed=9_000_000 + number * 10 + t)[0]
            hits = search_query.search_image(data=photo.jpeg, k=10).hits
            top1.append(hits[0].image.condition.slug == slug)
            p10.append(np.mean([h.image.condition.slug == slug for h in hits]))
            count += 1
    print(f"\nPhoto -> image through search_image, {count} fresh procedural photos (3 per condition, types I/III/V): "
          f"top-1 same condition {np.mean(top1):.2f}, P@10 same condition {np.mean(p10):.2f}")


if __name__ == "__main__":
    main()
