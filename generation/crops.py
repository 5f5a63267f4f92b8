"""ROI crops (preprocessing step 110 of the patent text).

For an image with lesion boxes, pick one box at random, add the other boxes that still fit in
one window together with it (a "group of adjacent ROIs"), and cut a random square window
that contains the group, so the lesion is prominent and little background remains.

Choices (see docs/dermgan.md):
- The window is square, `window` pixels (default 256). When the group is larger than the
  window, the square side grows to hold it and the cut is resized down to `window`.
- An image whose shorter side is below the window is scaled up (bicubic) so its shorter side
  equals the window; we resize rather than pad so the GAN never learns artificial borders.
- A box cut by the window edge is clipped to the window; a box left with nothing inside the
  window is dropped.
- With `tries` > 1 and a `score`, several windows around the same group are cut and the one
  scoring highest is kept (the GAN's training set scores by the share of skin-coloured pixels
  outside the boxes: background the map cannot describe only teaches the generator a mean).

Django-free.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image as PILImage

from generation.semantic_map import Box, MapError, check_box, scale_boxes


@dataclass(frozen=True)
class Crop:
    image: PILImage.Image  # window x window RGB
    boxes: tuple[Box, ...]  # in crop coordinates, at least one
    origin: tuple[int, int, int]  # x, y, side of the square cut in the (possibly upscaled) source


def _union(boxes: Sequence[Box]) -> Box:
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    x1, y1 = max(b.x + b.width for b in boxes), max(b.y + b.height for b in boxes)
    return Box(x=x0, y=y0, width=x1 - x0, height=y1 - y0)


def group_around(anchor: Box, boxes: Sequence[Box], side: int) -> list[Box]:
    """The anchor plus every other box (nearest first) whose union with the group fits `side`."""
    group = [anchor]
    others = sorted((b for b in boxes if b is not anchor), key=lambda b: abs(b.x - anchor.x) + abs(b.y - anchor.y))
    for box in others:
        union = _union([*group, box])
        if union.width <= side and union.height <= side:
            group.append(box)
    return group


def _clip(box: Box, x: int, y: int, side: int) -> Box | None:
    x0, y0 = max(box.x, x), max(box.y, y)
    x1, y1 = min(box.x + box.width, x + side), min(box.y + box.height, y + side)
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(x=x0 - x, y=y0 - y, width=x1 - x0, height=y1 - y0)


def roi_crop(
    image: PILImage.Image, boxes: Sequence[Box], *, window: int = 256, rng: random.Random,
    tries: int = 1, score: Callable[[Crop], float] | None = None,
) -> Crop:
    """One random ROI crop of `image`; with `tries` > 1 and `score`, the best-scoring of `tries`
    random windows around one lesion group. Raises MapError for no boxes or a box outside the image."""
    if not boxes:
        raise MapError("an ROI crop needs at least one box")
    for box in boxes:
        check_box(box, image.width, image.height)
    image = image.convert("RGB")
    short = min(image.size)
    if short < window:  # too small: scale up so the window fits
        factor = window / short
        size = (max(window, round(image.width * factor)), max(window, round(image.height * factor)))
        boxes = scale_boxes(boxes, size[0] / image.width, size[1] / image.height, *size)
        image = image.resize(size, PILImage.Resampling.BICUBIC)

    anchor = rng.choice(list(boxes))
    group = group_around(anchor, boxes, window)
    union = _union(group)
    side = min(max(window, union.width, union.height), min(image.size))
    # Any x with x <= union.x and x + side >= union.x + union.width keeps the group inside.
    x_lo, x_hi = max(0, union.x + union.width - side), min(union.x, image.width - side)
    y_lo, y_hi = max(0, union.y + union.height - side), min(union.y, image.height - side)
    best, best_score = None, float("-inf")
    for _ in range(max(1, tries) if score is not None else 1):
        x = rng.randint(min(x_lo, x_hi), max(x_lo, x_hi))
        y = rng.randint(min(y_lo, y_hi), max(y_lo, y_hi))
        crop = _cut(image, boxes, x, y, side, window)
        value = score(crop) if score is not None and tries > 1 else 0.0
        if value > best_score:
            best, best_score = crop, value
    return best


def _cut(image: PILImage.Image, boxes: Sequence[Box], x: int, y: int, side: int, window: int) -> Crop:
    clipped = [c for b in boxes if (c := _clip(b, x, y, side)) is not None]
    cut = image.crop((x, y, x + side, y + side))
    if side != window:
        cut = cut.resize((window, window), PILImage.Resampling.BICUBIC)
        clipped = list(scale_boxes(clipped, window / side, window / side, window, window))
    return Crop(image=cut, boxes=tuple(clipped), origin=(x, y, side))
