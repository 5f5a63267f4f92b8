"""Calibrate the relevance floors (text and photo) of the shipped search model on the held-out split.

    ATLAS_VAR_DIR=/tmp/atlas-search nice .venv/bin/python bench/calibrate_floor.py [--keep 0.95] [--json]

Needs an embedded, indexed demo atlas (prepare_demo). Scores are the cosine of the best hit,
model only (no boosts), over the held-out images (the ones train_clip never saw):

- text positives: captions of held-out images written the way train_clip writes them
  (condition names, synonyms, tones, body sites), and descriptions of skin without any
  condition name ("an itchy red rash on the arm");
- text negatives: sentences with nothing to do with skin ("nothing to do with skin: a red car");
- photo positives: each held-out image against the held-out images of other cases (its own
  case left out), and fresh procedural photos (new seeds) with their cropped, rotated and
  recompressed versions;
- photo negatives: pictures that are not skin: flat colours, gradients, noise, stripes,
  checkerboards, a drawn red car, shapes.

The floor is the highest score that keeps `--keep` of the positives (search/calibration.py);
set it with SEARCH_FLOOR_TEXT / SEARCH_FLOOR_IMAGE. Re-run whenever the model changes: scores
of a different model live on a different scale.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")

import django  # noqa: E402

django.setup()

import random  # noqa: E402

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from PIL import Image as PILImage  # noqa: E402
from PIL import ImageDraw, ImageFilter  # noqa: E402

from atlas.models import Image  # noqa: E402
from search import indexing  # noqa: E402
from search.calibration import floor_calibrate  # noqa: E402
from search.clip_train import CaptionMeta, caption_variants, is_heldout, metadata_path  # noqa: E402

SKIN_DESCRIPTIONS = [
    "an itchy red rash on the arm", "a red scaly patch on the elbow", "a brown spot on the cheek",
    "small bumps on the forehead", "a dark patch on the back", "a raised lump on the neck",
    "a round ring-shaped rash on the leg", "dry cracked skin on the hands", "a skin lesion on the face",
    "a pink patch on the chest", "spots on the back", "a growth on the scalp", "a lesion on the shin",
    "red skin around the nose", "a crusty patch on the ear", "a bump on the eyelid", "flaky skin on the scalp",
    "a patch of lighter skin on the hand", "a blister on the foot", "a sore that will not heal",
]  # fmt: skip
OFF_TOPIC = [
    "nothing to do with skin: a red car", "a red car", "a bowl of soup", "the stock market today",
    "a cat sleeping on a sofa", "quantum physics lecture", "football results", "a mountain lake at sunset",
    "how to bake bread", "a laptop keyboard", "train timetable to London", "a blue bicycle", "tax return form",
    "a pizza with mushrooms", "the history of Rome", "a jet plane in the sky", "guitar chords for beginners",
    "a wooden chair", "weather forecast for tomorrow", "a yellow taxi in the rain", "chess opening moves",
    "a bunch of bananas", "electric guitar", "a concrete bridge", "password reset email",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=float, default=0.95, help="Share of in-domain queries to keep above the floor.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    encoder = indexing.encoder_get()
    meta_file = metadata_path(Path(settings.SEARCH_CLIP_PRETRAINED))
    fraction = json.loads(meta_file.read_text())["config"]["holdout_fraction"] if meta_file.exists() else 0.2
    rows = list(
        Image.objects.public()
        .select_related("condition")
        .values_list("id", "sha256", "condition__slug", "condition__name", "condition__synonyms", "fitzpatrick_type", "body_site", "origin", "case_id")
    )
    held = [r for r in rows if is_heldout(r[1], fraction)]
    ids, vectors = indexing.stored_vectors(encoder.version, [r[0] for r in held])
    info = {r[0]: r for r in held}
    cases = np.array([info[i][8] or f"single-{i}" for i in ids])

    def best(queries: np.ndarray, exclude_case: np.ndarray | None = None) -> np.ndarray:
        scores = queries @ vectors.T
        if exclude_case is not None:
            scores[exclude_case[:, None] == cases[None, :]] = -np.inf
        return scores.max(axis=1)

    rng = random.Random(0)
    captions = []
    for i in ids[:: max(1, len(ids) // 300)]:  # about 300 held-out images, one caption each
        _, _, _, name, synonyms, skin_type, site, origin, _ = info[i]
        captions += caption_variants(CaptionMeta(name, tuple(synonyms), skin_type, site or "", origin), 1, rng)
    text_pos_captions = best(encoder.embed_texts(captions))
    text_pos_plain = best(encoder.embed_texts(SKIN_DESCRIPTIONS))
    text_neg = best(encoder.embed_texts(OFF_TOPIC))
    text = floor_calibrate(np.concatenate([text_pos_captions, text_pos_plain]), text_neg, keep=args.keep)

    sample = np.arange(len(ids))[:: max(1, len(ids) // 300)]
    image_pos_held = best(vectors[sample], exclude_case=cases[sample])
    fresh = _fresh_photos(held)
    image_pos_fresh = best(encoder.embed_images([PILImage.open(io.BytesIO(d)).convert("RGB") for d in fresh]))
    image_neg = best(encoder.embed_images(_not_skin()))
    image = floor_calibrate(np.concatenate([image_pos_held, image_pos_fresh]), image_neg, keep=args.keep)

    report = {
        "model_version": encoder.version,
        "heldout_images": len(ids),
        "keep": args.keep,
        "text": text.as_dict(),
        "text_medians": {"captions": _med(text_pos_captions), "descriptions": _med(text_pos_plain), "off_topic": _med(text_neg)},
        "image": image.as_dict(),
        "image_medians": {"heldout": _med(image_pos_held), "fresh_and_perturbed": _med(image_pos_fresh), "not_skin": _med(image_neg)},
        "settings": {"SEARCH_FLOOR_TEXT": round(text.floor, 3), "SEARCH_FLOOR_IMAGE": round(image.floor, 3)},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"model {encoder.version}; {len(ids)} held-out images; floors keep {args.keep:.0%} of in-domain queries\n")
    print("| queries | floor | in-domain kept (recall) | off-topic rejected | precision of a confident answer | median score in-domain | median score off-topic |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, c in (("text", text), ("photo", image)):
        print(f"| {label} ({c.positives} in-domain, {c.negatives} off-topic) | {c.floor:.3f} | {c.recall:.2f} | {c.rejected:.2f} | {c.precision:.2f} | {c.positive_median:.3f} | {c.negative_median:.3f} |")
    print(f"\nsettings: SEARCH_FLOOR_TEXT={text.floor:.3f} SEARCH_FLOOR_IMAGE={image.floor:.3f}")
    print(f"text medians: {report['text_medians']}; photo medians: {report['image_medians']}")


def _med(values: np.ndarray) -> float:
    return round(float(np.median(values)), 4)


def _fresh_photos(held: list) -> list[bytes]:
    """Fresh procedural photos (new seeds) and their cropped, rotated and recompressed versions."""
    from atlas.demo.render import LOOKS, render_case

    photos = []
    slugs = sorted({r[2] for r in held} & set(LOOKS))
    for number, slug in enumerate(slugs):
        for t in (2, 5):
            jpeg = render_case(condition=slug, fitzpatrick_type=t, seed=8_000_000 + number * 10 + t)[0].jpeg
            photos.append(jpeg)
            pixels = PILImage.open(io.BytesIO(jpeg)).convert("RGB")
            w, h = pixels.size
            for variant in (pixels.crop((w // 8, h // 8, w - w // 8, h - h // 8)), pixels.rotate(90), pixels.rotate(20)):
                photos.append(_jpeg(variant, 90))
            photos.append(_jpeg(pixels, 30))
    return photos


def _not_skin() -> list[PILImage.Image]:
    """Pictures that are not skin: what a "no confident match" must catch."""
    rng = np.random.default_rng(0)
    out = []
    for colour in [(255, 0, 0), (0, 0, 255), (0, 160, 0), (255, 255, 255), (0, 0, 0), (128, 128, 128), (250, 220, 0), (200, 0, 200)]:
        out.append(PILImage.new("RGB", (224, 224), colour))
    for _ in range(6):
        out.append(PILImage.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)))
    for axis in (0, 1):
        ramp = np.linspace(0, 255, 224, dtype=np.uint8)
        grid = np.repeat(ramp[None, :], 224, axis=0) if axis == 0 else np.repeat(ramp[:, None], 224, axis=1)
        out.append(PILImage.fromarray(np.stack([grid, 255 - grid, grid // 2], axis=-1)))
    for size in (8, 28):
        board = ((np.indices((224, 224)) // size).sum(axis=0) % 2 * 255).astype(np.uint8)
        out.append(PILImage.fromarray(board).convert("RGB"))
        stripes = ((np.arange(224)[None, :] // size) % 2 * 255).astype(np.uint8).repeat(224, axis=0)
        out.append(PILImage.fromarray(np.stack([stripes, stripes // 3, 255 - stripes], axis=-1)))
    car = PILImage.new("RGB", (224, 224), (120, 180, 240))  # a red car on a road under a blue sky
    draw = ImageDraw.Draw(car)
    draw.rectangle((0, 150, 224, 224), fill=(70, 70, 70))
    draw.rectangle((30, 110, 190, 160), fill=(210, 20, 20))
    draw.rectangle((65, 80, 155, 115), fill=(190, 15, 15))
    for x in (60, 160):
        draw.ellipse((x - 18, 145, x + 18, 181), fill=(15, 15, 15))
    out += [car, car.rotate(15), car.filter(ImageFilter.GaussianBlur(3))]
    for seed in range(6):  # random coloured shapes
        shapes = PILImage.new("RGB", (224, 224), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(shapes)
        for _ in range(8):
            x, y = (int(v) for v in rng.integers(0, 200, 2))
            draw.ellipse((x, y, x + 40, y + 40), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        out.append(shapes)
    return out


def _jpeg(pixels: PILImage.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    pixels.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


if __name__ == "__main__":
    main()
