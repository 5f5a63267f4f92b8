"""The GAN training set on disk: ROI crops as PNG plus a manifest.json that describes them.

    <dir>/manifest.json   {"format", "fingerprint", "window", "vocabulary", "params", "items": [...]}
    <dir>/crops/000000.png

Each item: file, condition (slug), skin_type (1-6), boxes ([x, y, w, h] in crop pixels),
split ("train" or "eval", decided per case so one patient never lands on both sides), image
(the source image's content hash). The fingerprint hashes the sources' hashes and labels,
the vocabulary and the build parameters, so the same catalogue gives the same fingerprint.

Django-free: the service gathers `SourceImage`s from the catalogue and calls `dataset_write`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from atlas.skin_tone import skin_share
from generation.crops import roi_crop
from generation.semantic_map import Box, MapSpec, encode, scale_boxes

MANIFEST_FORMAT = "dermgan-dataset/1"


@dataclass(frozen=True)
class SourceImage:
    key: str  # the image's content hash (stable across databases)
    group: str  # case id (or the key): decides the train/eval split
    condition: str
    skin_type: int
    boxes: tuple[Box, ...]
    load: Callable[[], PILImage.Image]
    # Image.training_identity when it is not the content hash (procedural images): the
    # fingerprint then keys the image by it and leaves out its boxes, which are pixels of a
    # render too (an extent thresholded in floating point).
    identity: str = ""


@dataclass(frozen=True)
class Manifest:
    root: Path
    fingerprint: str
    window: int
    vocabulary: tuple[str, ...]
    items: list[dict]

    def split(self, name: str) -> list[dict]:
        return [item for item in self.items if item["split"] == name]


def dataset_params(window: int, crops_per_image: int, holdout_percent: int, seed: int, window_tries: int = 1) -> dict:
    """The build parameters the fingerprint hashes; `window_tries` only when it is not the
    default, so sets built before it existed keep their fingerprints."""
    params = {"window": window, "crops_per_image": crops_per_image, "holdout_percent": holdout_percent, "seed": seed}
    return params | {"window_tries": window_tries} if window_tries > 1 else params


def _skin_score(crop) -> float:
    return skin_share(crop.image, [(b.x, b.y, b.width, b.height) for b in crop.boxes])


def fingerprint_of(sources: Sequence[SourceImage], vocabulary: Sequence[str], params: dict) -> str:
    rows = sorted(
        [s.identity or s.key, s.condition, s.skin_type, [] if s.identity else [list(b.__dict__.values()) for b in s.boxes]]
        for s in sources
    )
    blob = json.dumps({"rows": rows, "vocabulary": list(vocabulary), "params": params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _split_of(group: str, holdout_percent: int) -> str:
    bucket = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) % 100
    return "eval" if bucket < holdout_percent else "train"


def dataset_write(
    sources: Sequence[SourceImage],
    *,
    out_dir: Path,
    vocabulary: Sequence[str],
    window: int = 256,
    crops_per_image: int = 4,
    holdout_percent: int = 10,
    seed: int = 0,
    window_tries: int = 1,
) -> Manifest:
    """Cut `crops_per_image` random ROI crops of every source into `out_dir` (written to a temp
    dir first and renamed, so a failed build leaves nothing behind). With `window_tries` > 1 each
    crop is the most skin-covered of that many random windows (`skin_share`)."""
    if not sources:
        raise ValueError("no usable images: nothing to build a GAN training set from")
    params = dataset_params(window, crops_per_image, holdout_percent, seed, window_tries)
    fingerprint = fingerprint_of(sources, vocabulary, params)
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=out_dir.parent))
    try:
        (tmp / "crops").mkdir()
        items = []
        for source in sorted(sources, key=lambda s: s.key):
            image = source.load()
            for _ in range(crops_per_image):
                crop = roi_crop(image, source.boxes, window=window, rng=rng, tries=window_tries, score=_skin_score)
                name = f"crops/{len(items):06d}.png"
                crop.image.save(tmp / name)
                items.append({
                    "file": name,
                    "condition": source.condition,
                    "skin_type": source.skin_type,
                    "boxes": [[b.x, b.y, b.width, b.height] for b in crop.boxes],
                    "split": _split_of(source.group, holdout_percent),
                    "image": source.key,
                })
        manifest = {
            "format": MANIFEST_FORMAT,
            "fingerprint": fingerprint,
            "window": window,
            "vocabulary": list(vocabulary),
            "params": params,
            "items": items,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest_load(out_dir)


def manifest_load(root: Path) -> Manifest:
    root = Path(root)
    try:
        data = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{root} holds no readable GAN dataset manifest: {exc}") from exc
    if data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{root}/manifest.json is not a {MANIFEST_FORMAT} manifest")
    return Manifest(root, data["fingerprint"], data["window"], tuple(data["vocabulary"]), data["items"])


def render_pair(
    image: PILImage.Image, item: dict, *, size: int, vocabulary: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(image, map) as uint8 HxWx3 at `size`; the map is drawn from boxes scaled to `size`,
    so it stays exact at any training resolution."""
    boxes = tuple(Box(*b) for b in item["boxes"])
    if image.size != (size, size):
        boxes = scale_boxes(boxes, size / image.width, size / image.height, size, size)
        image = image.resize((size, size), PILImage.Resampling.BICUBIC)
    spec = MapSpec(condition=item["condition"], skin_type=item["skin_type"], boxes=boxes)
    return np.array(image.convert("RGB")), encode(spec, width=size, height=size, vocabulary=vocabulary)


class PairSet:
    """Every (image, map) pair of a split, held in memory as uint8 tensors (N x 3 x S x S)."""

    def __init__(self, manifest: Manifest, *, split: str, size: int, vocabulary: Sequence[str] | None = None) -> None:
        vocabulary = vocabulary or manifest.vocabulary
        items = manifest.split(split)
        images, maps = [], []
        for item in items:
            with PILImage.open(manifest.root / item["file"]) as im:
                img, sem = render_pair(im, item, size=size, vocabulary=vocabulary)
            images.append(torch.from_numpy(img).permute(2, 0, 1))
            maps.append(torch.from_numpy(sem).permute(2, 0, 1))
        self.items = items
        self.images = torch.stack(images) if images else torch.empty(0, 3, size, size, dtype=torch.uint8)
        self.maps = torch.stack(maps) if maps else torch.empty(0, 3, size, size, dtype=torch.uint8)

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, indices: list[int]) -> PairSet:
        pairs = PairSet.__new__(PairSet)
        pairs.items = [self.items[i] for i in indices]
        pairs.images, pairs.maps = self.images[indices], self.maps[indices]
        return pairs

    def spread(self, count: int) -> PairSet:
        """`count` pairs spread evenly over the set (for preview grids that show variety)."""
        step = max(1, len(self) // count)
        return self.subset(list(range(0, len(self), step))[:count])

    @classmethod
    def from_tensors(cls, images: torch.Tensor, maps: torch.Tensor) -> PairSet:
        """For tests and benches: pairs given directly as uint8 N x 3 x S x S tensors."""
        pairs = cls.__new__(cls)
        pairs.items, pairs.images, pairs.maps = [{}] * len(images), images, maps
        return pairs


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [-1, 1], the same scaling as semantic_map.to_tensor_values."""
    return batch.float() / 127.5 - 1.0


def to_uint8(batch: torch.Tensor) -> torch.Tensor:
    return ((batch.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

