"""Semantic maps: the generator's input, after the patent's FIG. 4.

A map is an RGB uint8 array the size of the crop:
  R = the skin type, one fixed level per Fitzpatrick type, over the whole map;
  G, B = the condition's code inside its ROI boxes, zero elsewhere.

The condition code comes from a vocabulary (an ordered tuple of condition slugs) that the
checkpoint carries, so a map never depends on database ids. Code k (1-based index in the
vocabulary) is spread over G and B as a 2-D grid, so neighbouring codes differ in two
channels by a large step rather than by one grey level.

Django-free: used by training, sampling and the services alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Lighter skin -> brighter R, so a map is readable by eye. Zero is never a level.
SKIN_LEVELS: dict[int, int] = {1: 240, 2: 200, 3: 160, 4: 120, 5: 80, 6: 40}
_LEVEL_TO_SKIN = {level: skin for skin, level in SKIN_LEVELS.items()}


class MapError(ValueError):
    """A map, box, condition or skin type that cannot be encoded or decoded."""


@dataclass(frozen=True)
class Box:
    """A box in pixel coordinates of the map: x, y of the top-left corner, width, height."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class MapSpec:
    """What a map says: one condition on one skin type, inside these boxes."""

    condition: str
    skin_type: int
    boxes: tuple[Box, ...]


def grid_side(vocab_size: int) -> int:
    """Cells per axis of the G x B code grid: the smallest square holding every code."""
    return max(1, math.ceil(math.sqrt(vocab_size)))


def grid_step(vocab_size: int) -> int:
    return 255 // grid_side(vocab_size)


def condition_code(condition: str, vocabulary: Sequence[str]) -> tuple[int, int]:
    """The (G, B) values of a condition. Raises MapError for a slug not in the vocabulary."""
    try:
        index = list(vocabulary).index(condition)
    except ValueError:
        raise MapError(f"unknown condition {condition!r}: not in the model's vocabulary of {len(vocabulary)}") from None
    side, step = grid_side(len(vocabulary)), grid_step(len(vocabulary))
    return step * (1 + index // side), step * (1 + index % side)


def code_index(g, b, vocab_size: int):
    """The 0-based vocabulary index of a valid (G, B) code; works on ints and on tensors alike."""
    side, step = grid_side(vocab_size), grid_step(vocab_size)
    return (g // step - 1) * side + (b // step - 1)


def condition_from_code(g: int, b: int, vocabulary: Sequence[str]) -> str:
    side, step = grid_side(len(vocabulary)), grid_step(len(vocabulary))
    if g % step or b % step or not (1 <= g // step <= side) or not (1 <= b // step <= side):
        raise MapError(f"G,B = {g},{b} is not a condition code")
    index = code_index(g, b, len(vocabulary))
    if index >= len(vocabulary):
        raise MapError(f"condition code {index + 1} is beyond the vocabulary of {len(vocabulary)}")
    return vocabulary[index]


def check_skin_type(skin_type: object) -> int:
    if isinstance(skin_type, bool) or not isinstance(skin_type, (int, np.integer)) or skin_type not in SKIN_LEVELS:
        raise MapError(f"skin type must be a Fitzpatrick type 1-6, got {skin_type!r}")
    return int(skin_type)


def check_box(box: Box, width: int, height: int) -> None:
    if box.width <= 0 or box.height <= 0:
        raise MapError(f"empty box {box}")
    if box.x < 0 or box.y < 0 or box.x + box.width > width or box.y + box.height > height:
        raise MapError(f"box {box} lies outside the {width}x{height} map")


def encode(spec: MapSpec, *, width: int, height: int, vocabulary: Sequence[str]) -> np.ndarray:
    """The HxWx3 uint8 map of a spec. Raises MapError on any invalid part, before drawing."""
    skin_type = check_skin_type(spec.skin_type)
    g, b = condition_code(spec.condition, vocabulary)
    if not spec.boxes:
        raise MapError("a map needs at least one box")
    for box in spec.boxes:
        check_box(box, width, height)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    out[..., 0] = SKIN_LEVELS[skin_type]
    for box in spec.boxes:
        out[box.y : box.y + box.height, box.x : box.x + box.width, 1] = g
        out[box.y : box.y + box.height, box.x : box.x + box.width, 2] = b
    return out


def decode(semantic_map: np.ndarray, *, vocabulary: Sequence[str]) -> MapSpec:
    """Read a map back. Boxes come back as the bounding boxes of the connected ROI regions,
    so non-touching boxes are recovered exactly (touching ones merge into their union's
    components); encode(decode(m)) == m holds for every map made of rectangles."""
    if semantic_map.ndim != 3 or semantic_map.shape[2] != 3 or semantic_map.dtype != np.uint8:
        raise MapError(f"a map is an HxWx3 uint8 array, got {semantic_map.dtype} {semantic_map.shape}")
    levels = np.unique(semantic_map[..., 0])
    if len(levels) != 1 or int(levels[0]) not in _LEVEL_TO_SKIN:
        raise MapError(f"R channel must hold one skin level of {sorted(_LEVEL_TO_SKIN)}, found {levels[:8].tolist()}")
    roi = semantic_map[..., 1:].any(axis=2)
    if not roi.any():
        raise MapError("the map has no ROI (G and B are zero everywhere)")
    codes = np.unique(semantic_map[..., 1:][roi].reshape(-1, 2), axis=0)
    if len(codes) != 1:
        raise MapError(f"a map holds one condition, found {len(codes)} codes")
    condition = condition_from_code(int(codes[0, 0]), int(codes[0, 1]), vocabulary)
    return MapSpec(condition=condition, skin_type=_LEVEL_TO_SKIN[int(levels[0])], boxes=boxes_from_mask(roi))


def boxes_from_mask(mask: np.ndarray) -> tuple[Box, ...]:
    """Bounding boxes of the 4-connected regions of a boolean mask, top-to-bottom, left-to-right."""
    labels, _ = ndimage.label(mask)
    boxes = [
        Box(x=s[1].start, y=s[0].start, width=s[1].stop - s[1].start, height=s[0].stop - s[0].start)
        for s in ndimage.find_objects(labels)
        if s is not None
    ]
    return tuple(sorted(boxes, key=lambda b: (b.y, b.x)))


def with_skin_type(semantic_map: np.ndarray, skin_type: int) -> np.ndarray:
    """The same map on another skin type (FIG. 6)."""
    out = semantic_map.copy()
    out[..., 0] = SKIN_LEVELS[check_skin_type(skin_type)]
    return out


def centred_box(*, size: float, width: int, height: int, centre: tuple[float, float] = (0.5, 0.5)) -> Box:
    """A square box whose side is `size` (0-1] of the map's shorter side, centred at `centre`
    (fractions of width and height), shifted to lie inside the map."""
    if not 0 < size <= 1:
        raise MapError(f"lesion size must be in (0, 1], got {size}")
    if not all(0 <= c <= 1 for c in centre):
        raise MapError(f"location must be fractions in [0, 1], got {centre}")
    side = max(1, round(size * min(width, height)))
    x = min(max(0, round(centre[0] * width - side / 2)), width - side)
    y = min(max(0, round(centre[1] * height - side / 2)), height - side)
    return Box(x=x, y=y, width=side, height=side)


def scale_boxes(boxes: Sequence[Box], factor_x: float, factor_y: float, width: int, height: int) -> tuple[Box, ...]:
    """Boxes after resizing their image; each keeps at least one pixel and stays inside."""
    out = []
    for box in boxes:
        x0, y0 = math.floor(box.x * factor_x), math.floor(box.y * factor_y)
        x1 = min(width, max(x0 + 1, math.ceil((box.x + box.width) * factor_x)))
        y1 = min(height, max(y0 + 1, math.ceil((box.y + box.height) * factor_y)))
        x0, y0 = min(x0, width - 1), min(y0, height - 1)
        out.append(Box(x=x0, y=y0, width=x1 - x0, height=y1 - y0))
    return tuple(out)


def to_tensor_values(semantic_map: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> float32 3xHxW in [-1, 1] (zero maps to exactly -1)."""
    return semantic_map.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
