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
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from PIL import Image as PILImage

from atlas.demo.shipped import shipped_install, sidecar_fingerprint_apply
from atlas.models import Image
from atlas.services.ingestion import stored_image_pixels
from atlas.services.skin_tone import calibration as skin_calibration
from generation import classifier as clf_mod
from generation import evaluate as ev
from generation import report as rpt
from generation import sample as smp
from generation.crops import roi_crop
from generation.dataset import _split_of as case_split  # the GAN training set's train/eval rule
from generation.judge_files import CLASSIFIER_TRAIN_COMMAND, classifier_path
from generation.semantic_map import Box, MapSpec, encode
from generation.services import GanError, _apply_threads, catalogue_vocabulary, gan_generator_load
from generation.train import code_version

logger = logging.getLogger(__name__)

DEMO_CLASSIFIER = settings.BASE_DIR / "generation" / "demo_model" / "condition-classifier.pt"
TRAIN_COMMAND = CLASSIFIER_TRAIN_COMMAND


class ClassifierMissing(GanError):
    """No condition classifier is installed; the message says what to run."""


@dataclass(frozen=True)
class RealRecord:
    """What the catalogue says about one real image with lesion boxes (no pixels)."""

    key: str  # public id
    identity: str  # Image.training_identity: the content hash, or what made a procedural image
    condition: str
    skin_type: int | None
    boxes: tuple[Box, ...]
    split: str  # "train" or "eval"
    load: Callable
    procedural: bool = False  # identity says what made it; its boxes are a render's pixels too


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


def real_records(*, holdout_percent: int | None = None) -> list[RealRecord]:
    """Every REAL catalogue image with lesion boxes, with its train/eval side."""
    holdout = settings.GAN_HOLDOUT_PERCENT if holdout_percent is None else holdout_percent
    images = (Image.objects.real().filter(regions__isnull=False).distinct()
              .select_related("condition", "source").prefetch_related("regions"))
    records = []
    for image in images.order_by("id"):
        boxes = tuple(Box(r.x, r.y, r.width, r.height) for r in image.regions.all())
        records.append(RealRecord(
            key=str(image.public_id), identity=image.training_identity, condition=image.condition.slug, skin_type=image.fitzpatrick_type,
            boxes=boxes, split=case_split(image.case_id or image.sha256, holdout),
            load=partial(stored_image_pixels, image.file.name), procedural=image.is_procedural,
        ))
    return records


def data_fingerprint(records: list[RealRecord], vocabulary: list[str], params: dict) -> str:
    # A procedural image's boxes are a render's pixels too (see Image.training_identity).
    rows = sorted([r.identity, r.condition, r.split, [] if r.procedural else
                   [[b.x, b.y, b.width, b.height] for b in r.boxes]] for r in records)
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
        "real_images_only": True, "vocabulary": list(classifier.vocabulary),  # read by judge_files, without torch
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
            sidecar_fingerprint_apply(_cache[key].meta, path)
        return _cache[key]


def demo_classifier_ensure(*, train_if_stale: bool = True) -> str:
    """Install the shipped classifier when it was trained on exactly this catalogue; train otherwise."""
    target = classifier_path()
    if target.exists():
        return f"condition classifier: {target.name} present"
    plan = clf_mod.TrainingPlan()
    catalogue = data_fingerprint(real_records(), catalogue_vocabulary(), _fingerprint_params(plan))
    if shipped_install(shipped=DEMO_CLASSIFIER, target=target, fingerprint=catalogue):
        return f"condition classifier: installed the shipped demo classifier (data fingerprint {catalogue[:16]} matches)"
    if not train_if_stale:
        return f"condition classifier: none for this catalogue (fingerprint {catalogue[:16]}); run {TRAIN_COMMAND}"
    logger.warning("no shipped condition classifier fits this catalogue (fingerprint %s): training one (minutes)", catalogue[:16])
    condition_classifier_train(plan=plan)
    return f"condition classifier: trained with {TRAIN_COMMAND}"


# --- the GAN report (issue 12): GAN-test, tone in band, diversity, FD / KID ----------------------

SKIN_TYPES = (1, 2, 3, 4, 5, 6)
MIN_LAYOUTS = 2
ENCODER_STEPS = 400  # the report's own crop encoder: training steps (tests use fewer)


def _spread(records: list[RealRecord], limit: int | None) -> list[RealRecord]:
    """At most `limit` records, taken in turn from each condition (all of them without a limit)."""
    if not limit or limit >= len(records):
        return records
    by_condition: dict[str, list[RealRecord]] = {}
    for record in records:
        by_condition.setdefault(record.condition, []).append(record)
    queues, picked = list(by_condition.values()), []
    while len(picked) < limit:
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked


def _as_tensor(images: list[PILImage.Image]) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(i.convert("RGB")) for i in images])).permute(0, 3, 1, 2).contiguous()


def report_encoder_path(records: list[RealRecord], *, window: int) -> Path:
    """Where the report's encoder for these records lies (one file per data fingerprint)."""
    fingerprint = data_fingerprint(records, catalogue_vocabulary(), {"encoder": "crop-encoder", "window": window, "steps": ENCODER_STEPS})
    return Path(settings.GAN_ROOT) / "encoders" / f"report-encoder-{fingerprint[:16]}.pt"


def report_encoder(records: list[RealRecord], crops: RealCrops, *, window: int) -> ev.CropEncoder:
    """The project's own crop encoder (generation.evaluate.CropEncoder) trained on the real
    training-side crops, cached per data fingerprint: the same extractor for every checkpoint."""
    path = report_encoder_path(records, window=window)
    fingerprint = path.stem.removeprefix("report-encoder-")
    if path.exists():
        return ev.CropEncoder.load(path)
    keep = [i for i, t in enumerate(crops.skin_types) if t is not None]
    vocabulary = catalogue_vocabulary()
    index = {slug: i for i, slug in enumerate(vocabulary)}
    encoder = ev.crop_encoder_train(
        crops.images[keep], torch.tensor([index[crops.conditions[i]] for i in keep]),
        torch.tensor([crops.skin_types[i] for i in keep]), n_conditions=len(vocabulary), steps=ENCODER_STEPS,
        name=f"atlas-crop-encoder[real, {fingerprint[:8]}]",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    encoder.save(path)
    return encoder


@dataclass
class _RealData:
    """Real crops for one (window, size), shared by every checkpoint of that geometry in a run."""

    held: RealCrops
    train: RealCrops


def gan_report(
    *, checkpoints: list[Path | None], max_layouts: int | None = None, diversity_seeds: int = 8, seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """The report for each checkpoint (None = the active one), measured in one run on the same
    held-out layouts, classifier, encoder and calibration, so the rows compare."""
    say = progress or (lambda line: None)
    generators = [gan_generator_load(checkpoint=checkpoint) for checkpoint in checkpoints]  # refuse bad files first
    clf = condition_classifier_load()
    records = real_records()
    cache: dict[tuple[int, int], _RealData] = {}
    encoder = None
    rows = []
    for gen in generators:
        window = int(gen.meta.get("config", {}).get("crop_window") or settings.GAN_CROP_SIZE)
        key = (window, gen.image_size)
        if key not in cache:
            say(f"cutting real crops (window {window}, {gen.image_size} px)")
            cache[key] = _real_data(records, gen.vocabulary, window=window, size=gen.image_size, max_layouts=max_layouts, seed=seed)
        if encoder is None:
            encoder = report_encoder(records, cache[key].train, window=window)
        say(f"measuring {gen.name}")
        rows.append(_report_one(gen, clf, encoder, cache[key], diversity_seeds=diversity_seeds, seed=seed))
    return rows


def _real_data(records, vocabulary, *, window: int, size: int, max_layouts: int | None, seed: int) -> _RealData:
    held = [r for r in records if r.split == "eval" and r.skin_type is not None and r.condition in vocabulary]
    held = _spread(held, max_layouts)
    if len(held) < MIN_LAYOUTS:
        raise GanError(f"only {len(held)} held-out real images with a skin type and boxes: too few to report on "
                       "(raise ATLAS_GAN_HOLDOUT_PERCENT or add images)")
    train = [r for r in records if r.split == "train"]
    return _RealData(real_crops(held, window=window, size=size, seed=seed),
                     real_crops(train, window=window, size=size, seed=seed + 7))


def _report_one(gen, clf, encoder, real: _RealData, *, diversity_seeds: int, seed: int) -> dict:
    started = time.perf_counter()
    held, size = real.held, gen.image_size
    maps, labels, wanted, boxes, own = [], [], [], [], []
    for i in range(len(held)):
        for skin_type in SKIN_TYPES:
            spec = MapSpec(held.conditions[i], skin_type, held.boxes[i])
            maps.append(encode(spec, width=size, height=size, vocabulary=gen.vocabulary))
            labels.append(held.conditions[i])
            wanted.append(skin_type)
            boxes.append([(b.x, b.y, b.width, b.height) for b in held.boxes[i]])
            if skin_type == held.skin_types[i]:
                own.append(len(maps) - 1)
    generated = smp.generate(gen, maps, seed=seed)
    synthetic = _as_tensor(generated)
    matched = synthetic[own]
    test = rpt.gan_test(
        clf, real_images=held.images, real_labels=held.conditions, real_types=held.skin_types,
        synthetic_images=matched, synthetic_labels=[labels[i] for i in own], synthetic_types=[wanted[i] for i in own],
    )
    by_request = clf_mod.accuracy_table(clf, synthetic, labels, wanted)
    cal = skin_calibration()
    tone = rpt.tone_in_band(generated, boxes, wanted, calibration=cal)
    tone_real = rpt.tone_in_band([np.asarray(im) for im in held.images.permute(0, 2, 3, 1).numpy()],
                                 [[(b.x, b.y, b.width, b.height) for b in bx] for bx in held.boxes], held.skin_types, calibration=cal)
    order = torch.randperm(len(real.train), generator=torch.Generator().manual_seed(seed))[: len(held)]
    fake_score = ev.score(held.images, matched, encoder)
    real_score = ev.score(held.images, real.train.images[order], encoder)
    diversity = _diversity(gen, encoder, held, real, maps, own, seeds=diversity_seeds, seed=seed)
    return {
        "checkpoint": gen.name, "image_size": size, "crop_window": int(gen.meta.get("config", {}).get("crop_window") or 0),
        "data_fingerprint": gen.meta.get("data_fingerprint", "")[:16], "n_layouts": len(held),
        "n_generated": len(generated), "classifier": clf.name, "extractor": encoder.name, "calibration": cal.name,
        "gan_test_real_top1": test["real"]["top1"], "gan_test_real_top3": test["real"]["top3"],
        "gan_test_synthetic_top1": test["synthetic"]["top1"], "gan_test_synthetic_top3": test["synthetic"]["top3"],
        "gan_test_synthetic_over_real": test["synthetic_over_real_top1"],
        "gan_test_synthetic_top1_by_requested_type": {t: row["top1"] for t, row in by_request["per_skin_type"].items()},
        "tone_within_one_min": tone["within_one_min"],
        "tone_within_one": {t: row["within_one"] for t, row in tone["per_type"].items()},
        "tone_real_within_one": {t: row["within_one"] for t, row in tone_real["per_type"].items()},
        "diversity_ratio": diversity["ratio"],
        "fd": round(fake_score.fd, 4), "fd_real_vs_real": round(real_score.fd, 4),
        "kid": round(fake_score.kid_mean, 6), "kid_real_vs_real": round(real_score.kid_mean, 6),
        "seconds": round(time.perf_counter() - started, 1),
        "details": {"gan_test": test, "gan_test_by_requested_type": by_request, "tone": tone, "tone_real": tone_real,
                    "diversity": diversity, "fd_synthetic": fake_score.as_dict(), "fd_real_vs_real": real_score.as_dict()},
    }


def _diversity(gen, encoder, held: RealCrops, real: _RealData, maps, own, *, seeds: int, seed: int) -> dict:
    """One held-out map per condition (at its own type), `seeds` samples each, against the real
    crops of the same (condition, type) cell."""
    per_layout = len(SKIN_TYPES)  # maps hold each held-out layout at every type, in order
    chosen: dict[str, int] = {}
    for map_index in own:
        chosen.setdefault(held.conditions[map_index // per_layout], map_index)
    cells = defaultdict(list)
    features_real = np.concatenate([encoder(held.images), encoder(real.train.images)])
    for i, (slug, t) in enumerate(zip(held.conditions + real.train.conditions, held.skin_types + real.train.skin_types)):
        cells[(slug, t)].append(i)
    seed_features, cell_features = [], []
    for n, (slug, map_index) in enumerate(sorted(chosen.items())):
        samples = [smp.generate(gen, [maps[map_index]], seed=seed + 1000 * (n + 1) + s)[0] for s in range(seeds)]
        seed_features.append(encoder(_as_tensor(samples)))
        skin_type = held.skin_types[map_index // per_layout]
        cell_features.append(features_real[cells[(slug, skin_type)]])
    return rpt.diversity_ratio(seed_features, cell_features)
