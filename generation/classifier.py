"""The condition classifier trained on REAL images only: the independent judge of GAN-test
(Shmelkov et al., ECCV 2018; issue 12) and of the condition gate of gap filling (issue 13).

It sees what the GAN makes: lesion-centred ROI windows (`crop_window` pixels of the source,
cut as generation.crops cuts the GAN's training crops) scaled to `image_size`. The network is
the augmentation study's mobilenet_v3_small, trained with its loop (flips, colour jitter,
label smoothing, BatchNorm recalibration). The file describes itself: vocabulary, image size,
crop window, training-data fingerprint, code version and held-out accuracy, so inference never
depends on database ids. Django-free: the service (generation.quality) gathers the images.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from generation.experiments.augmentation import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassifierConfig,
    ExperimentError,
    ImageSet,
    classifier_build,
    classifier_train,
)

FORMAT = "atlas-condition-classifier/1"
ARCHITECTURE = "mobilenet_v3_small"


class ClassifierError(ValueError):
    """A classifier file or input we refuse; the message says why."""


@dataclass(frozen=True)
class TrainingPlan:
    """How the classifier is trained (recorded in the file and its fingerprint)."""

    image_size: int = 64  # network input side
    crop_window: int = 128  # ROI window cut from the source image, as the GAN's crops
    crops_per_image: int = 2  # random ROI windows per training image
    steps: int = 800  # optimiser steps (~5 epochs of the demo atlas's 5,400 training crops)
    batch_size: int = 32  # small batches: the same number of updates at half the CPU of 64
    lr: float = 3e-3
    seed: int = 0

    def config(self, *, threads: int = 0) -> ClassifierConfig:
        return ClassifierConfig(image_size=self.image_size, batch_size=self.batch_size, lr=self.lr,
                                seed=self.seed, threads=threads, parallel=False)


@dataclass
class ConditionClassifier:
    net: nn.Module
    vocabulary: tuple[str, ...]
    image_size: int
    crop_window: int
    meta: dict = field(default_factory=dict)  # data_fingerprint, code_version, plan, metrics, ...

    @property
    def name(self) -> str:
        return f"{ARCHITECTURE}[{self.meta.get('data_fingerprint', '')[:8]}, {self.image_size}px]"

    def logits(self, images: torch.Tensor | Sequence, *, batch_size: int = 256) -> torch.Tensor:
        x = as_batch(images)
        self.net.eval()
        device = next(self.net.parameters()).device
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                chunk = x[start : start + batch_size].float().div(255)
                if chunk.shape[-2:] != (self.image_size, self.image_size):
                    chunk = F.interpolate(chunk, size=(self.image_size, self.image_size), mode="bilinear",
                                          align_corners=False, antialias=True)
                out.append(self.net(normalise(chunk).to(device)).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, len(self.vocabulary))

    def predict_topk(self, images: torch.Tensor | Sequence, k: int = 3) -> list[list[tuple[str, float]]]:
        """For each image, the k most likely conditions with their probabilities, best first."""
        if len(images) == 0:
            return []
        probs = self.logits(images).softmax(1)
        top = probs.topk(min(k, len(self.vocabulary)), dim=1)
        return [[(self.vocabulary[i], float(p)) for p, i in zip(ps, idx)] for ps, idx in zip(top.values.tolist(), top.indices.tolist())]


def normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def as_batch(images: torch.Tensor | Sequence) -> torch.Tensor:
    """uint8 N x 3 x H x W tensor, from such a tensor or a list of PIL images / H x W x 3 arrays."""
    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ClassifierError(f"expected uint8 N x 3 x H x W images, got {images.dtype} {tuple(images.shape)}")
        return images
    arrays = [np.asarray(im.convert("RGB")) if hasattr(im, "convert") else np.asarray(im) for im in images]
    if not arrays:
        return torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
    if any(a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 for a in arrays) or len({a.shape for a in arrays}) > 1:
        raise ClassifierError("images must be RGB of one size (PIL images or H x W x 3 uint8 arrays)")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


# --- training, evaluation -----------------------------------------------------------------------


def train(
    images: torch.Tensor, labels: Sequence[str], *, vocabulary: Sequence[str], plan: TrainingPlan,
    data_fingerprint: str, code_version: str = "", threads: int = 0, progress: Callable[[str], None] | None = None,
) -> ConditionClassifier:
    """Train on uint8 N x 3 x S x S crops labelled with condition slugs (all in `vocabulary`)."""
    vocabulary = tuple(vocabulary)
    index = {slug: i for i, slug in enumerate(vocabulary)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise ClassifierError(f"labels not in the vocabulary: {', '.join(unknown)}")
    if len(images) == 0:
        raise ClassifierError("nothing to train on: no real images with lesion boxes")
    data = ImageSet(as_batch(images), torch.tensor([index[s] for s in labels], dtype=torch.int64))
    try:
        net, log = classifier_train(plan.config(threads=threads), data, n_classes=len(vocabulary), steps=plan.steps, progress=progress)
    except ExperimentError as exc:
        raise ClassifierError(str(exc)) from exc
    meta = {"data_fingerprint": data_fingerprint, "code_version": code_version, "plan": dataclasses.asdict(plan),
            "n_train": len(data), "train_seconds": round(log.seconds, 1), "losses": [round(v, 4) for v in log.losses]}
    return ConditionClassifier(net.eval(), vocabulary, plan.image_size, plan.crop_window, meta)


def accuracy_table(
    clf: ConditionClassifier, images: torch.Tensor, labels: Sequence[str], skin_types: Sequence[int | None] = (), *, k: int = 3
) -> dict:
    """Top-1 and top-k accuracy overall, per condition and per skin type."""
    if len(images) == 0:
        return {"n": 0, "top1": None, f"top{k}": None, "per_condition": {}, "per_skin_type": {}}
    ranked = [[slug for slug, _ in row] for row in clf.predict_topk(images, k=k)]
    hits1 = [row[0] == label for row, label in zip(ranked, labels)]
    hitsk = [label in row for row, label in zip(ranked, labels)]
    return {
        "n": len(labels), "top1": _mean(hits1), f"top{k}": _mean(hitsk),
        "per_condition": _grouped(labels, hits1, hitsk, k),
        "per_skin_type": _grouped([str(t) for t in skin_types], hits1, hitsk, k) if skin_types else {},
    }


def _mean(values: Sequence[bool]) -> float:
    return round(float(np.mean(values)), 4) if len(values) else 0.0


def _grouped(keys: Sequence[str], hits1: Sequence[bool], hitsk: Sequence[bool], k: int) -> dict:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    return {key: {"n": len(idx), "top1": _mean([hits1[i] for i in idx]), f"top{k}": _mean([hitsk[i] for i in idx])}
            for key, idx in sorted(groups.items())}


# --- files --------------------------------------------------------------------------------------


def save(clf: ConditionClassifier, path: Path, *, half: bool = False) -> Path:
    """Write the classifier with everything inference needs (fp16 weights with `half`)."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in clf.net.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "architecture": ARCHITECTURE, "vocabulary": list(clf.vocabulary),
                "image_size": clf.image_size, "crop_window": clf.crop_window, "meta": clf.meta, "state": state}, tmp)
    tmp.replace(path)  # readers never see a half-written file
    return path


def load(path: Path, *, device: str = "cpu") -> ConditionClassifier:
    path = Path(path)
    if not path.is_file():
        raise ClassifierError(f"no condition classifier at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise ClassifierError(f"{path.name} is not a readable classifier file: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ClassifierError(f"{path.name} is not a {FORMAT} file")
    vocabulary = tuple(data["vocabulary"])
    net = classifier_build(len(vocabulary))
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in data["state"].items()})
    except RuntimeError as exc:
        raise ClassifierError(f"{path.name}: weights do not fit {ARCHITECTURE} with {len(vocabulary)} classes: {exc}") from exc
    return ConditionClassifier(net.to(device).eval(), vocabulary, int(data["image_size"]), int(data["crop_window"]), dict(data["meta"]))
