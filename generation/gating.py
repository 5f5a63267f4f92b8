"""The Django side of the automatic gates (generation.gates): settings, the judges' files, building
the near-copy index, and the calibration of its thresholds.

The judges are the GAN report's: the real-only condition classifier (generation.quality) and
the report's own crop encoder (`report_encoder`, trained on the real training-side crops). The
near-copy gate compares a sample with the same real training-side crops, cut with the
generator's window and size; their features and perceptual hashes are kept in one file per
geometry, built by `python manage.py prepare_gates` (and by `prepare_demo`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
from django.conf import settings

from generation import gates as gt
from generation.judge_files import PREPARE_COMMAND, GatesMissing, copy_index_path, gates_enabled
from generation.judge_files import encoder_path as _encoder_path
from generation.services import GanError, _apply_threads, gan_generator_load


def gate_thresholds() -> gt.GateThresholds:
    return gt.GateThresholds(
        tone_max_difference=settings.ATLAS_GATE_TONE_MAX_DIFFERENCE,
        condition_top_k=settings.ATLAS_GATE_CONDITION_TOP_K,
        copy_max_cosine=settings.ATLAS_GATE_COPY_MAX_COSINE,
        copy_max_hash_distance=settings.ATLAS_GATE_COPY_MAX_HASH_DISTANCE,
        defect_max_cast=settings.ATLAS_GATE_DEFECT_MAX_CAST,
        defect_min_contrast=settings.ATLAS_GATE_DEFECT_MIN_CONTRAST,
        defect_max_frame=settings.ATLAS_GATE_DEFECT_MAX_FRAME,
        defect_max_checker=settings.ATLAS_GATE_DEFECT_MAX_CHECKER,
    )


def generator_geometry(gen) -> tuple[int, int]:
    """(ROI window in source pixels, image side) of the generator's training crops."""
    return int(gen.meta.get("config", {}).get("crop_window") or settings.GAN_CROP_SIZE), int(gen.image_size)


# --- building the index ---------------------------------------------------------------------------


def gates_prepare(*, checkpoint=None, progress: Callable[[str], None] | None = None) -> str:
    """Make sure the gates of the active (or given) checkpoint can run: the report's encoder and the
    index of real training crops for the generator's geometry. The classifier is installed by
    prepare_demo or trained by train_condition_classifier. Returns a line for the log."""
    from generation import quality

    say = progress or (lambda line: None)
    gen = gan_generator_load(checkpoint=checkpoint)
    window, size = generator_geometry(gen)
    path = copy_index_path(window, size)
    records = quality.real_records()
    fingerprint = quality.data_fingerprint(records, [], {"gates": "copy-index", "window": window, "size": size})
    if path.exists() and gt.CopyIndex.load(path).meta.get("data_fingerprint") == fingerprint:
        index = gt.CopyIndex.load(path)
        if _encoder_path(index).exists():
            return f"gates: near-copy index present ({len(index)} real crops, {window} px windows at {size} px)"
    _apply_threads()
    train = [r for r in records if r.split == "train"]
    if not train:
        raise GanError("no real training-side images with lesion boxes: nothing for the near-copy gate to compare with")
    started = time.perf_counter()
    say(f"cutting {len(train)} real training crops ({window} px windows at {size} px)")
    crops = quality.real_crops(train, window=window, size=size, seed=7)  # the report's train crops (seed + 7)
    say("the report's crop encoder (trained once per data fingerprint)")
    encoder = quality.report_encoder(records, crops, window=window)
    encoder_file = quality.report_encoder_path(records, window=window)
    index = gt.copy_index_build(encoder, crops.images, crops.keys, meta={
        "encoder_file": encoder_file.name, "window": window, "size": size, "data_fingerprint": fingerprint,
        "generator": gen.name, "n_images": len(train)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    index.save(tmp)
    tmp.replace(path)  # a job never reads a half-written index
    _cache.clear()
    return f"gates: built the near-copy index ({len(index)} real crops) in {time.perf_counter() - started:.0f} s"


# --- loading the judges ------------------------------------------------------------------------------

_cache: dict[tuple, tuple] = {}
_cache_lock = threading.Lock()


def gate_judges(*, geometry: tuple[int, int], conditions: Sequence[str] = (), enabled: Sequence[str] | None = None) -> gt.Judges:
    """The judges the enabled gates need for a generator of this (crop window, image size),
    loaded once per process and file version; GatesMissing (with what to run) when one is not
    installed or cannot judge one of `conditions`."""
    from atlas.services.skin_tone import calibration
    from generation import quality

    enabled = gates_enabled() if enabled is None else tuple(enabled)
    judges = gt.Judges(calibration=calibration())
    if "condition" in enabled:
        try:
            judges.classifier = quality.condition_classifier_load()
        except GanError as exc:
            raise GatesMissing(f"the condition gate needs the real-only classifier: {exc}") from exc
    if "copy" in enabled:
        judges.encoder, judges.copy_index = _copy_judges(*geometry)
    try:
        gt.gates_check_ready(enabled, judges, conditions)
    except gt.GateError as exc:
        what = "python manage.py train_condition_classifier" if "classifier" in str(exc) else PREPARE_COMMAND
        raise GatesMissing(f"{exc}: run `{what}`") from exc
    return judges


def _copy_judges(window: int, size: int):
    from generation.evaluate import CropEncoder

    path = copy_index_path(window, size)
    missing = GatesMissing(f"the near-copy gate needs the crop encoder and its index of real training crops "
                           f"({window} px windows at {size} px): run `{PREPARE_COMMAND}`")
    if not path.exists():
        raise missing
    key = (str(path), path.stat().st_mtime_ns)
    with _cache_lock:
        if key not in _cache:
            index = gt.CopyIndex.load(path)
            encoder_path = _encoder_path(index)
            if not index.meta.get("encoder_file") or not encoder_path.exists():
                raise missing
            _cache[key] = (CropEncoder.load(encoder_path), index)
        return _cache[key]


# --- calibration --------------------------------------------------------------------------------------


def gates_calibrate(*, progress: Callable[[str], None] | None = None, max_images: int | None = None) -> dict:
    """Nearest-neighbour cosine and pHash distance of each held-out real crop (a case the train side
    never holds) to the training-side index, and the defect statistics of real crops: the figures
    the copy and defect thresholds are set from (distinct real images must pass)."""
    from generation import quality

    say = progress or (lambda line: None)
    gen = gan_generator_load()
    window, size = generator_geometry(gen)
    encoder, index = _copy_judges(window, size)
    held = [r for r in quality.real_records() if r.split == "eval"][: max_images or None]
    say(f"cutting {len(held)} held-out real crops")
    crops = quality.real_crops(held, window=window, size=size, seed=1)
    features = gt.unit_features(encoder, crops.images)
    arrays = crops.images.permute(0, 2, 3, 1).numpy()
    cosines, distances, stats = [], [], []
    for feature, arr in zip(features, arrays):
        cosine, _, distance, _ = index.nearest(feature, gt.phash(arr))
        cosines.append(cosine)
        distances.append(distance)
        stats.append(gt.defect_stats(arr))
    # The same crops as in the index: what an exact copy scores (the gate must catch these).
    same = _index_sample(quality, window, size)
    copies = [index.nearest(f, gt.phash(a))[::2] for f, a in zip(gt.unit_features(encoder, same), same.permute(0, 2, 3, 1).numpy())]

    def summary(values: Sequence[float]) -> dict:
        v = np.asarray(values, dtype=np.float64)
        return {"min": round(float(v.min()), 4), "p1": round(float(np.percentile(v, 1)), 4),
                "median": round(float(np.median(v)), 4), "p99": round(float(np.percentile(v, 99)), 4),
                "max": round(float(v.max()), 4)}

    return {
        "generator": gen.name, "window": window, "size": size, "encoder": encoder.name,
        "n_index": len(index), "n_held_out": len(held),
        "distinct_nearest_cosine": summary(cosines), "distinct_nearest_hash_distance": summary(distances),
        "copy_nearest_cosine": summary([c for c, _ in copies]), "copy_nearest_hash_distance": summary([d for _, d in copies]),
        "defects": {name: summary([s[name] for s in stats]) for name in ("cast", "contrast", "frame", "checker")},
        "thresholds": json.loads(json.dumps(gate_thresholds().__dict__)),
    }


def _index_sample(quality, window: int, size: int, n: int = 50):
    """The first `n` training crops exactly as the index holds them (the same random cut: the
    crops' generator is consumed in record order)."""
    train = [r for r in quality.real_records() if r.split == "train"]
    return quality.real_crops(train[:n], window=window, size=size, seed=7).images
