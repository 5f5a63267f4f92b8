"""What the GAN's training crops hold, and how far L1 can get without knowing it.

    .venv/bin/python bench/gan_crop_stats.py [--dataset var/gan/datasets/<fingerprint16>] [--json]

For the held-out crops of a built training set (default: the current one), per Fitzpatrick
type: the L1 error (in the generator's [-1, 1] scale) of the best predictor that knows only the
skin type, a constant colour (the per-channel median of the type's training crops), and of the
per-pixel median image; and, when atlas.skin_tone is present, the share of each crop's pixels
outside the lesion boxes that are skin-coloured (the rest is background, clothing, shadow).
Django is not needed: the dataset is read from disk.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _load(root: Path, item: dict) -> np.ndarray:
    with Image.open(root / item["file"]) as im:
        return np.asarray(im.convert("RGB"))


def _skin_share(crop: np.ndarray, boxes: list[list[int]]) -> float | None:
    """The share the crop windows are chosen by (atlas.skin_tone.skin_share); None when the
    boxes cover the whole crop, so such crops do not count as 0 % skin."""
    try:
        from atlas.skin_tone import lesion_mask, skin_share
    except ImportError:
        return None
    if lesion_mask(crop.shape[0], crop.shape[1], boxes, margin=0.0, pad=0.0).all():
        return None
    return skin_share(crop, boxes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", help="dataset folder (default: the one datasets/current.json names)")
    parser.add_argument("--train-per-type", type=int, default=400, help="training crops per type for the medians")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.dataset:
        root = Path(args.dataset)
    else:
        gan = Path("var/gan/datasets")
        root = gan / json.loads((gan / "current.json").read_text())["path"].split("/", 1)[1]
    manifest = json.loads((root / "manifest.json").read_text())
    rows, totals = {}, {"n": 0, "constant": 0.0, "median_image": 0.0, "skin": [], "crops_with_background": 0}
    for skin in range(1, 7):
        train = [i for i in manifest["items"] if i["split"] == "train" and i["skin_type"] == skin][: args.train_per_type]
        held = [i for i in manifest["items"] if i["split"] == "eval" and i["skin_type"] == skin]
        if not train or not held:
            continue
        scale = lambda a: a.astype(np.float32) / 127.5 - 1  # noqa: E731
        stack = np.stack([scale(_load(root, i)) for i in train])
        colour, median_image = np.median(stack.reshape(-1, 3), axis=0), np.median(stack, axis=0)
        crops = [(_load(root, i), i["boxes"]) for i in held]
        const = float(np.mean([np.abs(scale(c) - colour).mean() for c, _ in crops]))
        med = float(np.mean([np.abs(scale(c) - median_image).mean() for c, _ in crops]))
        shares = [s for c, b in crops if (s := _skin_share(c, b)) is not None]
        rows[skin] = {"held_out": len(crops), "l1_constant_colour": round(const, 3), "l1_median_image": round(med, 3),
                      "skin_share_outside_boxes": round(float(np.mean(shares)), 3) if shares else None}
        totals["n"] += len(crops)
        totals["constant"] += const * len(crops)
        totals["median_image"] += med * len(crops)
        totals["skin"] += shares
        totals["crops_with_background"] += sum(s < 0.9 for s in shares)
    summary = {
        "dataset": manifest["fingerprint"][:16], "held_out": totals["n"],
        "l1_constant_colour": round(totals["constant"] / totals["n"], 3),
        "l1_median_image": round(totals["median_image"] / totals["n"], 3),
        "skin_share_outside_boxes": round(float(np.mean(totals["skin"])), 3) if totals["skin"] else None,
        "share_of_crops_under_90pct_skin": round(totals["crops_with_background"] / totals["n"], 3) if totals["skin"] else None,
        "by_type": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    print(f"dataset {summary['dataset']}, {summary['held_out']} held-out crops")
    print("| type | crops | L1 constant colour | L1 median image | skin share outside boxes |\n|---|---|---|---|---|")
    for skin, r in rows.items():
        print(f"| {skin} | {r['held_out']} | {r['l1_constant_colour']} | {r['l1_median_image']} | {r['skin_share_outside_boxes']} |")
    print(f"| all | {summary['held_out']} | {summary['l1_constant_colour']} | {summary['l1_median_image']} | "
          f"{summary['skin_share_outside_boxes']} |")
    if summary["share_of_crops_under_90pct_skin"] is not None:
        print(f"crops whose non-lesion area is under 90% skin-coloured: {summary['share_of_crops_under_90pct_skin']:.0%}")


if __name__ == "__main__":
    main()
