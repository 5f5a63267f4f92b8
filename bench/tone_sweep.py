"""Equal service across tones: text-only tuning of the search model, swept over tone_spread.

    ATLAS_VAR_DIR=/tmp/atlas-search OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python bench/tone_sweep.py \
        --init search/demo_model/atlas-clip-rn.pt --spread 0.3 --spread 0.15 [--epochs 30 --lr 3e-4 --warmup 20]

For the init model and for each spread it tunes the text tower (`train_clip --text-only`,
search/clip_train.py `train_text`; the training images are embedded once for all runs, the
image tower being frozen) and prints, per queried type I..VI, the text -> image P@10 of the
condition and of the skin type for "CONDITION on TONE skin" over the held-out split, exactly
as bench/bench_search_quality.py computes them (the skin type over cells with >= 10 held-out
images). Image vectors do not change, so image -> image and photo figures are the init's.
Checkpoints go to --out-dir (default /tmp/tone-sweep) for bench_search_quality.py --model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402

from atlas.models import Condition, Image  # noqa: E402
from atlas.skin import FITZPATRICK_TONE_WORDS  # noqa: E402
from search import clip_train  # noqa: E402
from search.encoder import load_encoder  # noqa: E402
from search.indexing import open_pixels  # noqa: E402
from search.training import clip_samples  # noqa: E402

ENOUGH = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--init", required=True)
    parser.add_argument("--spread", type=float, action="append", default=[])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out-dir", default="/tmp/tone-sweep")
    args = parser.parse_args()
    model = settings.SEARCH_CLIP_MODEL
    rows = list(Image.objects.public().order_by("id").values_list("id", "sha256", "condition__slug", "fitzpatrick_type"))
    held = [r for r in rows if clip_train.is_heldout(r[1], 0.2)]
    images = {i.pk: i for i in Image.objects.filter(pk__in=[r[0] for r in held])}
    vectors = load_encoder(model, args.init, "cpu").embed_images([open_pixels(images[r[0]]) for r in held])
    slugs, types = np.array([r[2] for r in held]), np.array([r[3] or 0 for r in held])
    names = dict(Condition.objects.values_list("slug", "name"))
    print("init:", report(load_encoder(model, args.init, "cpu"), vectors, slugs, types, names), flush=True)

    embed, cached = clip_train._embed_views, {}

    def embed_once(*a, **k):  # the image tower is frozen: every run ranks against the same vectors
        if "features" not in cached:
            cached["features"] = embed(*a, **k)
        return cached["features"]

    clip_train._embed_views = embed_once
    samples = clip_samples()
    for spread in args.spread:
        config = clip_train.preset(
            "fast", model_name=model, init=args.init, text_only=True, threads=1, epochs=args.epochs, lr=args.lr,
            warmup_steps=args.warmup, tone_spread=spread,
        )
        out = Path(args.out_dir) / f"spread-{spread}.pt"
        started = time.process_time()
        clip_train.train(samples, config=config, out_path=out, command=" ".join(sys.argv), progress=False)
        line = report(load_encoder(model, str(out), "cpu"), vectors, slugs, types, names)
        print(f"spread {spread} ({time.process_time() - started:.0f} CPU-s, {out}):", line, flush=True)


def report(encoder, vectors, slugs, types, names) -> str:
    condition, skin_type = {t: [] for t in range(1, 7)}, {t: [] for t in range(1, 7)}
    for slug in sorted(set(slugs)):
        queries = encoder.embed_texts([f"{names[slug]} on {FITZPATRICK_TONE_WORDS[t][0]} skin" for t in range(1, 7)])
        for t in range(1, 7):
            top = np.argsort(-(vectors @ queries[t - 1]))[:10]
            condition[t].append(np.mean(slugs[top] == slug))
            if np.sum((slugs == slug) & (types == t)) >= ENOUGH:
                skin_type[t].append(np.mean(types[top] == t))
    c = [np.mean(condition[t]) for t in range(1, 7)]
    s = {t: np.mean(v) for t, v in skin_type.items() if v}
    return (
        f"condition P@10 by type {' '.join(f'{x:.2f}' for x in c)} (gap {max(c) - min(c):.3f}); "
        f"skin type P@10, cells with enough, by type {' '.join(f'{roman}:{x:.2f}' for roman, x in s.items())} "
        f"(gap {max(s.values()) - min(s.values()):.3f})"
    )


if __name__ == "__main__":
    main()
