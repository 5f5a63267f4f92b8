"""Search quality on the held-out split of the demo atlas (the images train_clip never saw).

    ATLAS_VAR_DIR=/tmp/atlas-search nice .venv/bin/python bench/bench_search_quality.py [--json]
        [--model NAME=CHECKPOINT ...]

Without --model it measures the configured model (SEARCH_CLIP_MODEL, SEARCH_CLIP_PRETRAINED);
each --model is measured in the same run, on the same images and photos (before/after
comparisons). Vectors are computed here from the stored thumbnails, so a model needs no
reindex to be measured. --json prints one JSON object per model (a list when there are several).

- text -> image: for every condition and Fitzpatrick type, the query "CONDITION on TONE skin"
  (TONE = the type's first plain word in atlas/skin.py, e.g. "dark brown"), ranked over the
  held-out images. Precision@10 of the condition (model alone, no hybrid filter), of the skin
  type (exact, and within one type), and the skin type with the service's hybrid rule
  (condition named in the text -> filter). Per condition and per queried skin type.
  "Enough images": the skin-type precision of a (condition, type) query can only reach 1 when
  the held-out split has 10 images of that cell; `text_p10_skin_type_by_type_enough` averages
  only such cells (`text_p10_skin_type_by_type_capped` divides by what the cell allows instead).
- image -> image: each held-out image queries the others (its own case excluded: a second
  photo of the same lesion would be a trivial hit); precision@10 of the same condition.
- photo -> image: fresh procedural photos (new seeds, never in the atlas; every condition on
  every skin type) against every public image, as search-by-photo sees them (decoded like an
  upload); top-1 and P@10 of the same condition, for the photo as rendered and for a crop
  around the lesion, a quarter turn, a 20-degree tilt (inscribed square, no fill) and JPEG q30.
Chance = the share of held-out images with the queried condition / type.
"""

from __future__ import annotations

import argparse
import io
import json
import math
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
from PIL import Image as PILImage  # noqa: E402

from atlas.demo.render import render_case  # noqa: E402
from atlas.models import Condition, Image  # noqa: E402
from atlas.services.ingestion import decode_upload  # noqa: E402
from atlas.skin import FITZPATRICK_TONE_WORDS, roman  # noqa: E402
from search.clip_train import is_heldout, metadata_path  # noqa: E402
from search.encoder import load_encoder  # noqa: E402
from search.indexing import open_pixels  # noqa: E402

ENOUGH = 10  # held-out images a (condition, type) cell needs for its skin-type P@10 to count as "enough"
PERTURBATIONS = ("crop", "rot90", "rot20", "jpeg30")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown tables")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT", help="a model to measure (repeatable)")
    args = parser.parse_args()
    models = [tuple(spec.split("=", 1)) for spec in args.model] or [(settings.SEARCH_CLIP_MODEL, str(settings.SEARCH_CLIP_PRETRAINED))]
    for spec in models:
        if len(spec) != 2 or not Path(spec[1]).is_file():
            parser.error(f"--model wants NAME=CHECKPOINT with an existing file, got {'='.join(spec)!r}")

    rows = list(Image.objects.public().order_by("id").values_list("id", "sha256", "condition__slug", "fitzpatrick_type", "case_id"))
    names = dict(Condition.objects.values_list("slug", "name"))
    photos = fresh_photos(sorted({r[2] for r in rows}))
    reports = [measure(name, path, rows, names, photos) for name, path in models]
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    else:
        for report in reports:
            print_markdown(report)


def holdout_fraction(checkpoint: str) -> float:
    meta_file = metadata_path(Path(checkpoint))
    return json.loads(meta_file.read_text())["config"]["holdout_fraction"] if meta_file.exists() else 0.2


def measure(model_name: str, checkpoint: str, rows: list, names: dict, photos: list) -> dict:
    encoder = load_encoder(model_name, checkpoint, "cpu")
    fraction = holdout_fraction(checkpoint)
    ids = np.array([r[0] for r in rows])
    by_id = {image.pk: image for image in Image.objects.filter(pk__in=ids)}
    vectors = encoder.embed_images([open_pixels(by_id[i]) for i in ids])
    slugs = np.array([r[2] for r in rows])
    types = np.array([r[3] or 0 for r in rows])
    cases = np.array([r[4] or f"single-{r[0]}" for r in rows])
    held = np.array([is_heldout(r[1], fraction) for r in rows])
    report = {
        "model_version": encoder.version,
        "model_name": model_name,
        "checkpoint": checkpoint,
        "heldout_images": int(held.sum()),
        "public_images": len(rows),
        "holdout_fraction": fraction,
    }
    report.update(text_to_image(encoder, vectors[held], slugs[held], types[held], names))
    report.update(image_to_image(vectors[held], slugs[held], types[held], cases[held]))
    report.update(photo_to_image(encoder, vectors, slugs, photos))
    return report


def _mean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return round(float(np.mean(values)), 4) if values else float("nan")


def text_to_image(encoder, vectors, slugs, types, names) -> dict:
    results = []  # (slug, type, cond_p, type_p, near_p, hybrid_p, cell size)
    for slug in sorted(set(slugs)):
        for t in range(1, 7):
            q = encoder.embed_texts([f"{names[slug]} on {FITZPATRICK_TONE_WORDS[t][0]} skin"])[0]
            order = np.argsort(-(vectors @ q))[:10]
            pool = np.flatnonzero(slugs == slug)  # hybrid: the condition named in the text filters
            hybrid = pool[np.argsort(-(vectors[pool] @ q))[:10]]
            cell = int(np.sum((slugs == slug) & (types == t)))
            results.append((
                slug, t, float(np.mean(slugs[order] == slug)), float(np.mean(types[order] == t)),
                float(np.mean(np.abs(types[order] - t) <= 1)),
                float(np.mean(types[hybrid] == t)) if cell else float("nan"), cell,
            ))

    def by(key_index: int, value_index: int, keep=lambda r: True) -> dict:
        groups = defaultdict(list)
        for r in results:
            if keep(r):
                groups[r[key_index]].append(r[value_index])
        return {str(k): _mean(v) for k, v in sorted(groups.items())}

    capped = [(r[1], r[3] / min(1.0, r[6] / 10)) for r in results if r[6]]
    capped_by_type = defaultdict(list)
    for t, value in capped:
        capped_by_type[t].append(min(1.0, value))
    return {
        "text_p10_condition_model_only": _mean(r[2] for r in results),
        "text_p10_skin_type_model_only": _mean(r[3] for r in results),
        "text_p10_skin_type_within_one": _mean(r[4] for r in results),
        "text_p10_skin_type_hybrid": _mean(r[5] for r in results),
        "text_p10_condition_by_type": by(1, 2),
        "text_p10_skin_type_by_type": by(1, 3),
        "text_p10_skin_type_by_type_enough": by(1, 3, keep=lambda r: r[6] >= ENOUGH),
        "text_p10_skin_type_by_type_capped": {str(t): _mean(v) for t, v in sorted(capped_by_type.items())},
        "text_p10_condition_by_condition": by(0, 2),
        "text_p10_skin_type_by_condition": by(0, 3),
        "text_p10_skin_type_hybrid_by_type": by(1, 5),
        "heldout_images_by_type": {str(t): int(np.sum(types == t)) for t in range(1, 7)},
        "heldout_images_by_condition": {s: int(np.sum(slugs == s)) for s in sorted(set(slugs))},
        "text_cells_with_enough_images_by_type": {
            str(t): sum(1 for r in results if r[1] == t and r[6] >= ENOUGH) for t in range(1, 7)
        },
        "chance_condition": round(1 / len(set(slugs)), 4),
    }


def image_to_image(vectors, slugs, types, cases) -> dict:
    sims = vectors @ vectors.T
    precisions = []
    for row in range(len(vectors)):
        scores = sims[row].copy()
        scores[cases == cases[row]] = -np.inf  # itself and its case's other photos
        top = np.argsort(-scores)[:10]
        precisions.append(float(np.mean(slugs[top] == slugs[row])))
    precisions = np.array(precisions)
    return {
        "image_p10_condition": _mean(precisions),
        "image_p10_condition_chance": round(float(sum(np.mean(slugs == s) ** 2 for s in set(slugs))), 4),
        "image_p10_condition_by_type": {str(t): _mean(precisions[types == t]) for t in range(1, 7) if np.any(types == t)},
        "image_p10_condition_by_condition": {s: _mean(precisions[slugs == s]) for s in sorted(set(slugs))},
    }


def fresh_photos(slugs: list[str]) -> list[tuple[str, int, dict[str, bytes]]]:
    """(condition, type, {version: JPEG bytes}) for new procedural photos and their perturbed copies."""
    photos = []
    for number, slug in enumerate(slugs):
        for t in range(1, 7):
            photo = render_case(condition=slug, fitzpatrick_type=t, seed=9_000_000 + number * 10 + t)[0]
            photos.append((slug, t, {"original": photo.jpeg, **perturbed(photo.jpeg, photo.boxes)}))
    return photos


def _jpeg(image: PILImage.Image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def perturbed(jpeg: bytes, boxes) -> dict[str, bytes]:
    image = PILImage.open(io.BytesIO(jpeg)).convert("RGB")
    width, height = image.size
    # A crop a person would make: 60 % of the side, around the (first) lesion.
    side = int(0.6 * min(width, height))
    x, y, w, h = boxes[0] if boxes else (width // 2, height // 2, 0, 0)
    left = min(max(0, x + w // 2 - side // 2), width - side)
    top = min(max(0, y + h // 2 - side // 2), height - side)
    crop = image.crop((left, top, left + side, top + side))
    # A tilted photo: rotate 20 degrees and keep the largest square with no filled corners.
    tilted = image.rotate(20, resample=PILImage.Resampling.BICUBIC, expand=False)
    inner = int(min(width, height) / (math.cos(math.radians(20)) + math.sin(math.radians(20))))
    box = ((width - inner) // 2, (height - inner) // 2)
    tilted = tilted.crop((box[0], box[1], box[0] + inner, box[1] + inner))
    return {
        "crop": _jpeg(crop),
        "rot90": _jpeg(image.transpose(PILImage.Transpose.ROTATE_90)),
        "rot20": _jpeg(tilted),
        "jpeg30": _jpeg(image, quality=30),
    }


def photo_to_image(encoder, vectors, slugs, photos) -> dict:
    results = defaultdict(lambda: {"top1": [], "p10": []})
    by_type = defaultdict(list)
    for slug, t, versions in photos:
        for version, data in versions.items():
            q = encoder.embed_images([decode_upload(data)])[0]
            top = np.argsort(-(vectors @ q))[:10]
            results[version]["top1"].append(float(slugs[top[0]] == slug))
            results[version]["p10"].append(float(np.mean(slugs[top] == slug)))
            if version == "original":
                by_type[t].append(float(slugs[top[0]] == slug))
    return {
        "photo_count": len(photos),
        "photo_top1_condition": _mean(results["original"]["top1"]),
        "photo_p10_condition": _mean(results["original"]["p10"]),
        "photo_top1_condition_perturbed": {v: _mean(results[v]["top1"]) for v in PERTURBATIONS},
        "photo_p10_condition_perturbed": {v: _mean(results[v]["p10"]) for v in PERTURBATIONS},
        "photo_top1_condition_by_type": {str(t): _mean(v) for t, v in sorted(by_type.items())},
    }


def print_markdown(r: dict) -> None:
    print(f"\n## {r['model_version']}: {r['heldout_images']} held-out images of {r['public_images']} (fraction {r['holdout_fraction']})\n")
    print("| measure | value |\n| --- | ---: |")
    for key in (
        "text_p10_condition_model_only", "text_p10_skin_type_model_only", "text_p10_skin_type_within_one",
        "text_p10_skin_type_hybrid", "image_p10_condition", "image_p10_condition_chance", "photo_top1_condition",
        "photo_p10_condition",
    ):
        print(f"| {key} | {r[key]:.2f} |")
    for version in PERTURBATIONS:
        print(f"| photo_top1_condition ({version}) | {r['photo_top1_condition_perturbed'][version]:.2f} |")
    print("\n| queried type | held-out images | cells with >= 10 | P@10 condition (model only) | P@10 skin type (model only) | "
          "P@10 skin type, cells with enough | P@10 skin type / what the cell allows | image->image P@10 (query of this type) | photo top-1 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in range(1, 7):
        k = str(t)
        print(f"| {roman(t)} ({FITZPATRICK_TONE_WORDS[t][0]}) | {r['heldout_images_by_type'][k]} | {r['text_cells_with_enough_images_by_type'][k]} | "
              f"{r['text_p10_condition_by_type'][k]:.2f} | {r['text_p10_skin_type_by_type'][k]:.2f} | "
              f"{r['text_p10_skin_type_by_type_enough'].get(k, float('nan')):.2f} | {r['text_p10_skin_type_by_type_capped'].get(k, float('nan')):.2f} | "
              f"{r['image_p10_condition_by_type'].get(k, float('nan')):.2f} | {r['photo_top1_condition_by_type'][k]:.2f} |")
    print("\n| condition | held-out images | text P@10 condition | text P@10 skin type | image->image P@10 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for slug, count in r["heldout_images_by_condition"].items():
        print(f"| {slug} | {count} | {r['text_p10_condition_by_condition'][slug]:.2f} | "
              f"{r['text_p10_skin_type_by_condition'][slug]:.2f} | {r['image_p10_condition_by_condition'][slug]:.2f} |")


if __name__ == "__main__":
    main()
