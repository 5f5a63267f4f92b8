"""The Django side of judging generated images: the real-only condition classifier (train, load,
ship) and the catalogue data the GAN report needs (held-out real crops and their layouts).

Real images only, always: every query here starts from `Image.objects.real()`, so a synthetic
image can never teach the judge that grades synthetic images (tested).

Held-out = the cases the GAN training set holds out: the same hash rule on the case id
(generation.dataset), so the classifier never trains on a case the GAN report tests on, and the
report works straight after `make run`, without `build_gan_dataset`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from PIL import Image as PILImage

from atlas.models import Image
from atlas.services.ingestion import stored_image_pixels
from generation import classifier as clf_mod
from generation.crops import roi_crop
from generation.dataset import _split_of as case_split  # the GAN training set's train/eval rule
from generation.semantic_map import Box
from generation.services import GanError, _apply_threads, catalogue_vocabulary
from generation.train import code_version

logger = logging.getLogger(__name__)

DEMO_CLASSIFIER = settings.BASE_DIR / "generation" / "demo_model" / "condition-classifier.pt"
TRAIN_COMMAND = "python manage.py train_condition_classifier"


class ClassifierMissing(GanError):
    """No condition classifier is installed; the message says what to run."""


@dataclass(frozen=True)
class RealRecord:
    """What the catalogue says about one real image with lesion boxes (no pixels)."""

    key: str  # public id
    sha256: str
    condition: str
    skin_type: int | None
    boxes: tuple[Box, ...]
    split: str  # "train" or "eval"
    load: Callable


@dataclass
class RealCrops:
    """ROI windows of real images: uint8 N x 3 x S x S, with labels and boxes in crop pixels."""

    images: torch.Tensor
    conditions: list[str] = field(default_factory=list)
    skin_types: list[int | None] = field(default_factory=list)
    boxes: list[tuple[Box, ...]] = field(default_factory=list)  # in the S x S crop's pixels
    keys: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.conditions)


def classifier_path() -> Path:
    return Path(settings.GAN_ROOT) / "classifiers" / "condition-classifier.pt"


def real_records(*, holdout_percent: int | None = None) -> list[RealRecord]:
    """Every REAL catalogue image with lesion boxes, with its train/eval side."""
    holdout = settings.GAN_HOLDOUT_PERCENT if holdout_percent is None else holdout_percent
    images = Image.objects.real().filter(regions__isnull=False).distinct().select_related("condition").prefetch_related("regions")
    records = []
    for image in images.order_by("id"):
        boxes = tuple(Box(r.x, r.y, r.width, r.height) for r in image.regions.all())
        records.append(RealRecord(
            key=str(image.public_id), sha256=image.sha256, condition=image.condition.slug, skin_type=image.fitzpatrick_type,
            boxes=boxes, split=case_split(image.case_id or image.sha256, holdout),
            load=partial(stored_image_pixels, image.file.name),
        ))
    return records


def data_fingerprint(records: list[RealRecord], vocabulary: list[str], params: dict) -> str:
    rows = sorted([r.sha256, r.condition, r.split, [[b.x, b.y, b.width, b.height] for b in r.boxes]] for r in records)
    blob = json.dumps({"rows": rows, "vocabulary": vocabulary, "params": params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def real_crops(records: list[RealRecord], *, window: int, size: int, per_image: int = 1, seed: int = 0) -> RealCrops:
    """`per_image` seeded ROI windows of each record, scaled to size x size."""
    rng = random.Random(seed)
    arrays, out = [], RealCrops(torch.zeros(0))
    for record in records:
        image = record.load()
        for _ in range(per_image):
            crop = roi_crop(image, record.boxes, window=window, rng=rng)
            scale = size / crop.image.width
            arrays.append(np.asarray(crop.image.resize((size, size), PILImage.Resampling.BICUBIC, reducing_gap=2.0)) if scale != 1 else np.asarray(crop.image))
            out.boxes.append(tuple(_scaled(b, scale, size) for b in crop.boxes))
            out.conditions.append(record.condition)
            out.skin_types.append(record.skin_type)
            out.keys.append(record.key)
    out.images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous() if arrays else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return out


def _scaled(box: Box, scale: float, size: int) -> Box:
    x, y = min(size - 1, int(box.x * scale)), min(size - 1, int(box.y * scale))
    return Box(x, y, max(1, min(size - x, round(box.width * scale))), max(1, min(size - y, round(box.height * scale))))


# --- training and shipping ----------------------------------------------------------------------


@dataclass
class ClassifierTrainResult:
    path: Path
    classifier: clf_mod.ConditionClassifier
    held_out: dict


def condition_classifier_train(
    *, plan: clf_mod.TrainingPlan | None = None, out: Path | None = None, command: str = TRAIN_COMMAND,
    progress: Callable[[str], None] | None = None,
) -> ClassifierTrainResult:
    """Train on the train side of the real images, score on the held-out side, save to `out`
    (default: the installed classifier) with a JSON sidecar (command, fingerprint, accuracy)."""
    plan = plan or clf_mod.TrainingPlan()
    records = real_records()
    train_records = [r for r in records if r.split == "train"]
    eval_records = [r for r in records if r.split == "eval"]
    if not train_records:
        raise GanError("no real images with lesion boxes to train the condition classifier on; import or seed some first")
    vocabulary = catalogue_vocabulary()
    fingerprint = data_fingerprint(records, vocabulary, _fingerprint_params(plan))
    _apply_threads()
    train_set = real_crops(train_records, window=plan.crop_window, size=plan.image_size, per_image=plan.crops_per_image, seed=plan.seed)
    classifier = clf_mod.train(train_set.images, train_set.conditions, vocabulary=vocabulary, plan=plan,
                               data_fingerprint=fingerprint, code_version=code_version(), progress=progress)
    held = real_crops(eval_records, window=plan.crop_window, size=plan.image_size, seed=plan.seed + 1)
    held_out = clf_mod.accuracy_table(classifier, held.images, held.conditions, held.skin_types)
    classifier.meta.update({"command": command, "held_out": held_out, "n_eval": len(held)})
    path = Path(out) if out else classifier_path()
    clf_mod.save(classifier, path, half=True)
    _write_sidecar(path, classifier)
    _cache.clear()
    return ClassifierTrainResult(path, classifier, held_out)


def _fingerprint_params(plan: clf_mod.TrainingPlan) -> dict:
    return {"plan": plan.__dict__, "holdout_percent": settings.GAN_HOLDOUT_PERCENT}


def _write_sidecar(path: Path, classifier: clf_mod.ConditionClassifier) -> None:
    meta = classifier.meta
    held = meta.get("held_out", {})
    path.with_suffix(".json").write_text(json.dumps({
        "file": path.name, "bytes": path.stat().st_size, "architecture": clf_mod.ARCHITECTURE,
        "command": meta.get("command", ""), "data_fingerprint": meta["data_fingerprint"], "code_version": meta["code_version"],
        "image_size": classifier.image_size, "crop_window": classifier.crop_window, "plan": meta["plan"],
        "n_train_crops": meta["n_train"], "n_eval": meta.get("n_eval"), "train_seconds": meta["train_seconds"],
        "held_out_top1": held.get("top1"), "held_out_top3": held.get("top3"), "held_out": held,
        "real_images_only": True,
    }, indent=1))


_cache: dict[tuple, clf_mod.ConditionClassifier] = {}
_cache_lock = threading.Lock()


def condition_classifier_load(*, path: Path | None = None) -> clf_mod.ConditionClassifier:
    """The installed (or given) classifier, loaded once per process and file version."""
    path = Path(path) if path else classifier_path()
    if not path.exists():
        raise ClassifierMissing(f"no condition classifier at {path}: run `{TRAIN_COMMAND}` (or `prepare_demo`)")
    key = (str(path), path.stat().st_mtime_ns)
    with _cache_lock:
        if key not in _cache:
            try:
                _cache[key] = clf_mod.load(path)
            except clf_mod.ClassifierError as exc:
                raise GanError(str(exc)) from exc
        return _cache[key]


def demo_classifier_ensure(*, train_if_stale: bool = True) -> str:
    """Install the shipped classifier when it was trained on exactly this catalogue; train otherwise."""
    target = classifier_path()
    if target.exists():
        return f"condition classifier: {target.name} present"
    plan = clf_mod.TrainingPlan()
    catalogue = data_fingerprint(real_records(), catalogue_vocabulary(), _fingerprint_params(plan))
    meta_path = DEMO_CLASSIFIER.with_suffix(".json")
    if DEMO_CLASSIFIER.exists() and meta_path.exists() and json.loads(meta_path.read_text())["data_fingerprint"] == catalogue:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEMO_CLASSIFIER, target)
        shutil.copyfile(meta_path, target.with_suffix(".json"))
        return f"condition classifier: installed the shipped demo classifier (data fingerprint {catalogue[:16]} matches)"
    if not train_if_stale:
        return f"condition classifier: none for this catalogue (fingerprint {catalogue[:16]}); run {TRAIN_COMMAND}"
    logger.warning("no shipped condition classifier fits this catalogue (fingerprint %s): training one (minutes)", catalogue[:16])
    condition_classifier_train(plan=plan)
    return f"condition classifier: trained with {TRAIN_COMMAND}"
