"""Blinded study images: every one leaves as a PNG of the same pixel size AND the same byte
length, so neither the format, the dimensions nor Content-Length says real or synthetic.

Why PNG: it is lossless, so no encoder setting depends on the content (a JPEG would need a
quality chosen per image to fit a fixed budget, and its quantisation tables would then tell),
and its worst-case size is known: zlib documents a bound on its output for any input, so a
256 x 256 RGB image never compresses to more than about 13% over its raw scanlines. Each PNG is
padded up to STUDY_IMAGE_BYTES with one private ancillary chunk (`paDd`), which decoders skip.
The padding bytes are pseudo-random (seeded per item), so a proxy that compresses responses
cannot shrink one image's padding more than another's. Django-free.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
from PIL import Image as PILImage

STUDY_IMAGE_SIZE = 256  # pixels per side of every study image
PAD_CHUNK = b"paDd"  # ancillary (p), private (a), reserved bit clear (D), safe to copy (d)
_CHUNK_OVERHEAD = 12  # length + type + CRC


def png_worst_case_bytes(size: int = STUDY_IMAGE_SIZE) -> int:
    """An upper bound on Pillow's PNG of a size x size RGB image, whatever the pixels: the
    signature and IHDR, zlib's conservative deflateBound (the one for non-default memory
    settings, as Pillow uses: ~13% over the filtered scanlines) with its wrapper, one IDAT
    chunk header per 64 KiB written, and IEND."""
    raw = size * (1 + 3 * size)  # one filter byte per scanline
    zlib_bound = raw + (raw >> 3) + (raw >> 8) + (raw >> 9) + 4 + 6
    idat_chunks = zlib_bound // 65536 + 1
    return 8 + 25 + zlib_bound + idat_chunks * _CHUNK_OVERHEAD + 12


STUDY_IMAGE_BYTES = 224_000  # every study image is exactly this long (the bound is 222,728)
assert STUDY_IMAGE_BYTES >= png_worst_case_bytes() + _CHUNK_OVERHEAD


class BlindingError(ValueError):
    """The image cannot be brought to the fixed length (never for STUDY_IMAGE_SIZE pixels)."""


def fixed_length_png(pixels: np.ndarray, *, length: int = STUDY_IMAGE_BYTES, seed: str = "") -> bytes:
    """`pixels` (H x W x 3 uint8) as a PNG of exactly `length` bytes, without metadata."""
    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    pad = length - len(data) - _CHUNK_OVERHEAD
    if pad < 0:
        raise BlindingError(f"a PNG of {len(data)} bytes does not fit in {length}")
    filler = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8])).bytes(pad)
    chunk = struct.pack(">I", pad) + PAD_CHUNK + filler + struct.pack(">I", zlib.crc32(PAD_CHUNK + filler))
    iend = data[-_CHUNK_OVERHEAD:]
    assert iend[4:8] == b"IEND"
    return data[:-_CHUNK_OVERHEAD] + chunk + iend
