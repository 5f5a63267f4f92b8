"""Side-by-side pictures for docs/dermgan.md: real | older model | newer model (two seeds),
per condition (rows) and skin type (column groups).

    .venv/bin/python bench/dermgan_pictures.py --old generation/demo_model/dermgan-fast.pt \
        --new generation/demo_model/dermgan-demo.pt --out docs/img/dermgan-compare.png

Each row borrows the lesion layout of one real catalogue image of the condition (the first
by id whose case is in the GAN's held-out split, so neither model trained on it); each
column group sets that layout's map to one skin type. "real" is a real image of the same
cell when the catalogue has one (blank when the cell is empty: that is what gap filling is
for). Older models at another resolution are resized to the newer one's with bicubic.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")

import django  # noqa: E402

django.setup()

from PIL import Image as PILImage  # noqa: E402
from PIL import ImageDraw  # noqa: E402

from atlas.models import Image  # noqa: E402
from generation import sample as smp  # noqa: E402
from generation.semantic_map import with_skin_type  # noqa: E402
from generation.services import image_window_pair  # noqa: E402

CONDITIONS = ("melanoma", "psoriasis", "vitiligo", "acne", "tinea-versicolor", "basal-cell-carcinoma",
              "eczema", "urticaria")


def _crop(image: Image, window: int, size: int, vocabulary) -> tuple[PILImage.Image, dict]:
    real, sem = image_window_pair(image, window=window, size=size, vocabulary=vocabulary)
    return PILImage.fromarray(real), {"map": sem}


def _real_of(slug: str, skin: int) -> Image | None:
    return (Image.objects.filter(condition__slug=slug, fitzpatrick_type=skin, origin="real", regions__isnull=False)
            .order_by("-id").prefetch_related("regions").select_related("condition").first())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--types", type=int, nargs="+", default=[1, 3, 5, 6])
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--window", type=int, default=128)
    args = parser.parse_args()
    old, new = smp.generator_load(Path(args.old), device="cpu"), smp.generator_load(Path(args.new), device="cpu")
    n = new.image_size
    rows = []
    for slug in args.conditions:
        layout = (Image.objects.filter(condition__slug=slug, origin="real", regions__isnull=False)
                  .exclude(fitzpatrick_type=None).order_by("id").prefetch_related("regions").select_related("condition").first())
        if layout is None:
            continue
        _, base = _crop(layout, args.window, n, new.vocabulary)
        _, base_old = _crop(layout, args.window, old.image_size, old.vocabulary)
        row = []
        for skin in args.types:
            real_image = _real_of(slug, skin)
            real = _crop(real_image, args.window, n, new.vocabulary)[0] if real_image else PILImage.new("RGB", (n, n), "white")
            if real_image is None:
                ImageDraw.Draw(real).text((8, n // 2 - 6), "no real image", fill=(90, 90, 90))
            older = smp.generate(old, [with_skin_type(base_old["map"], skin)], seed=0)[0].resize((n, n), PILImage.Resampling.BICUBIC)
            newer = [smp.generate(new, [with_skin_type(base["map"], skin)], seed=s)[0] for s in args.seeds]
            row += [real, older, *newer]
        rows.append(row)
    sheet = smp.grid(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"{args.out}: rows {', '.join(args.conditions)}; per type {args.types}: real | old | new seeds {args.seeds}")


if __name__ == "__main__":
    main()
