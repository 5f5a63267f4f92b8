"""Semantic maps for gap filling, from the box geometry of real images. Django-free.

A gap-filling map borrows the lesion layout of a real image of the same condition: the same
ROI-window choice as training crops (generation.crops: one box, plus the neighbours that fit
in the window with it), boxes carried into window coordinates and scaled to the generator's
resolution, then the requested skin type in R. Only box geometry is read, never pixels, so a
map costs no image decoding. Optionally (`vary_size`) the layout is varied: the boxes are
scaled about their centres (FIG. 7's "vary the lesion size"), moved and stretched a little,
and sometimes one lesion borrowed from another real layout of the condition is added, so no
two maps of a cell are the same.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from generation.crops import group_around
from generation.semantic_map import Box, MapSpec, centred_box, encode, scale_boxes

SIZE_RANGE = (0.75, 1.33)  # box scale factors drawn when varying the size
JITTER = 0.12  # when varying, each box moves by up to this fraction of the map side
EXTRA_BOX_CHANCE = 0.3  # when varying, the chance of one more lesion borrowed from another layout
DEFAULT_BOX_SIZES = (0.25, 0.55)  # box side (fraction of the map) when a condition has no real example


@dataclass(frozen=True)
class RealLayout:
    """Where the lesions are on one real image (its pixel coordinates)."""

    key: str  # the image's public id, recorded in provenance
    width: int
    height: int
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class GapMap:
    semantic_map: np.ndarray  # size x size x 3 uint8
    params: dict  # what provenance records: enough to redraw the map


def stable_seed(*parts: object) -> int:
    """A 31-bit seed from its parts, the same in every process (unlike hash())."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def window_boxes(layout: RealLayout, *, window: int, size: int, rng: random.Random) -> tuple[Box, ...]:
    """The boxes of one random ROI window of `layout`, in a size x size map's coordinates."""
    boxes = [b for b in layout.boxes if b.width > 0 and b.height > 0]
    anchor = rng.choice(boxes)
    short = min(layout.width, layout.height)
    # Training upscales small images so the window fits; in source coordinates that is a
    # window of the whole short side.
    win = min(window, short)
    group = group_around(anchor, boxes, win)
    x0, y0 = min(b.x for b in group), min(b.y for b in group)
    x1, y1 = max(b.x + b.width for b in group), max(b.y + b.height for b in group)
    side = min(max(win, x1 - x0, y1 - y0), short)
    x_lo, x_hi = max(0, x1 - side), min(x0, layout.width - side)
    y_lo, y_hi = max(0, y1 - side), min(y0, layout.height - side)
    x = rng.randint(min(x_lo, x_hi), max(x_lo, x_hi))
    y = rng.randint(min(y_lo, y_hi), max(y_lo, y_hi))
    clipped = []
    for b in boxes:
        cx0, cy0 = max(b.x, x), max(b.y, y)
        cx1, cy1 = min(b.x + b.width, x + side), min(b.y + b.height, y + side)
        if cx1 > cx0 and cy1 > cy0:
            clipped.append(Box(cx0 - x, cy0 - y, cx1 - cx0, cy1 - cy0))
    return scale_boxes(clipped, size / side, size / side, size, size)


def scaled(boxes: Sequence[Box], factor: float, size: int) -> tuple[Box, ...]:
    """Each box scaled by `factor` about its centre, kept inside the map, at least 1 pixel."""
    out = []
    for b in boxes:
        w = max(1, min(size, round(b.width * factor)))
        h = max(1, min(size, round(b.height * factor)))
        cx, cy = b.x + b.width / 2, b.y + b.height / 2
        x = min(max(0, round(cx - w / 2)), size - w)
        y = min(max(0, round(cy - h / 2)), size - h)
        out.append(Box(x, y, w, h))
    return tuple(out)


def jittered(boxes: Sequence[Box], size: int, rng: random.Random) -> tuple[Box, ...]:
    """Each box moved by up to JITTER of the map side and its aspect changed by up to 20%,
    kept inside the map: the same layout never gives the same map twice."""
    out = []
    reach = JITTER * size
    for b in boxes:
        stretch = rng.uniform(0.8, 1.25)
        w = max(1, min(size, round(b.width * stretch)))
        h = max(1, min(size, round(b.height / stretch)))
        x = min(max(0, round(b.x + (b.width - w) / 2 + rng.uniform(-reach, reach))), size - w)
        y = min(max(0, round(b.y + (b.height - h) / 2 + rng.uniform(-reach, reach))), size - h)
        out.append(Box(x, y, w, h))
    return tuple(out)


def _free_spot(boxes: Sequence[Box], w: int, h: int, size: int, rng: random.Random) -> Box | None:
    """A w x h box that overlaps none of `boxes` (a few random tries), or None."""
    for _ in range(20):
        x, y = rng.randint(0, size - w), rng.randint(0, size - h)
        if all(x + w <= b.x or b.x + b.width <= x or y + h <= b.y or b.y + b.height <= y for b in boxes):
            return Box(x, y, w, h)
    return None


def gap_map(
    *,
    condition: str,
    skin_type: int,
    layouts: Sequence[RealLayout],
    vocabulary: Sequence[str],
    size: int,
    window: int,
    vary_size: bool,
    seed: int,
) -> GapMap:
    """One map for (condition, skin type): a real layout picked by `seed`, or, when the
    condition has no usable real example, one centred box of random size."""
    rng = random.Random(seed)
    if layouts:
        layout = layouts[rng.randrange(len(layouts))]
        boxes = window_boxes(layout, window=window, size=size, rng=rng)
        source = layout.key
    else:
        side = rng.uniform(*DEFAULT_BOX_SIZES)
        boxes = (centred_box(size=side, width=size, height=size, centre=(rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65))),)
        source = None
    factor = round(rng.uniform(*SIZE_RANGE), 3) if vary_size else 1.0
    if factor != 1.0:
        boxes = scaled(boxes, factor, size)
    extra_from = None
    if vary_size:  # vary the layout too: position, aspect, and sometimes one more lesion
        boxes = jittered(boxes, size, rng)
        if layouts and rng.random() < EXTRA_BOX_CHANCE:
            other = layouts[rng.randrange(len(layouts))]
            donor = window_boxes(other, window=window, size=size, rng=rng)[0]
            spot = _free_spot(boxes, donor.width, donor.height, size, rng)
            if spot is not None:
                boxes, extra_from = (*boxes, spot), other.key
    spec = MapSpec(condition=condition, skin_type=skin_type, boxes=tuple(boxes))
    params = {
        "condition": condition,
        "skin_type": skin_type,
        "source_image": source,  # None: no real example, a default centred box
        "size_scale": factor,
        "layout_varied": vary_size,  # boxes jittered (and maybe one added) from the real layout
        "extra_box_from": extra_from,
        "image_size": size,
        "boxes": [[b.x, b.y, b.width, b.height] for b in boxes],
    }
    return GapMap(encode(spec, width=size, height=size, vocabulary=vocabulary), params)
