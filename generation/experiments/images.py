"""Image helpers of the experiments that web pages use too: no torch here, so a web process
that shows a reader-study image never loads it (docs/scaling.md, light web workers)."""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage


def to_square(image: PILImage.Image, size: int) -> np.ndarray:
    """Short side to `size` (bilinear, antialiased), centre crop: size x size x 3 uint8."""
    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))
