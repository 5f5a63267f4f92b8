"""Automatic gates on a generated sample, before it counts toward its gap-filling cell (issue 13).

Four gates, each a plain function of the pixels and what was asked for; Django-free (numpy,
torch through the classifier and encoder it is handed):

- tone: the skin type measured from the non-lesion skin (atlas.skin_tone) is within
  `tone_max_difference` of the requested type. Too little skin to measure fails.
- condition: the real-only condition classifier (generation.classifier, the GAN report's judge)
  puts the requested condition among its `condition_top_k` most likely.
- copy: not a near-copy of a real training crop. Two views, either one flags a copy: the
  cosine of the project's own crop encoder (generation.evaluate.CropEncoder, the GAN report's
  FD extractor) to the nearest real crop reaches `copy_max_cosine`, or a 64-bit perceptual
  hash (DCT pHash) lies within `copy_max_hash_distance` bits of a real crop's hash. Both
  thresholds are calibrated so that distinct real images pass (COPY_CALIBRATION below).
- defects: no large uniform colour cast (the mean colour of the image is a saturated hue skin
  never has, or the image is almost flat) and no frame pattern (all four borders step sharply
  from the interior) or checkerboard (energy at the pixel-period 2x2 pattern). Cheap statistics,
  calibrated on real crops (generation.gate_calibration).

A sample passes when every enabled gate passes; every gate runs on every sample, so the job's
counts say which gates fail and the stored image's provenance carries every result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from atlas import skin_tone as st
from generation.gate_calibration import COPY_CALIBRATION, DEFECT_CALIBRATION

GATES = ("tone", "condition", "copy", "defects")  # the order results are reported in
HASH_BITS = 64


class GateError(ValueError):
    """Gates that cannot run (a missing judge, a condition the classifier does not know)."""


@dataclass(frozen=True)
class GateThresholds:
    tone_max_difference: int = 1  # measured vs requested Fitzpatrick type
    condition_top_k: int = 3  # the requested condition must be among this many
    copy_max_cosine: float = COPY_CALIBRATION["max_cosine"]  # at or above: a near-copy
    copy_max_hash_distance: int = COPY_CALIBRATION["max_hash_distance"]  # at or below (bits): a near-copy
    defect_max_cast: float = DEFECT_CALIBRATION["max_cast"]  # cast score above: a colour cast
    defect_min_contrast: float = DEFECT_CALIBRATION["min_contrast"]  # L* std below: a flat image
    defect_max_frame: float = DEFECT_CALIBRATION["max_frame"]  # weakest border step (Delta E) above: a frame
    defect_max_checker: float = DEFECT_CALIBRATION["max_checker"]  # 2x2 pattern share above: a checkerboard


# --- perceptual hash ----------------------------------------------------------------------------------


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


_DCT32 = _dct_matrix(32)


def phash(image) -> int:
    """64-bit DCT perceptual hash (the usual pHash): 32 x 32 grey, 2-D DCT, the 8 x 8 lowest
    frequencies, each bit = above their median (the DC term left out of the median)."""
    arr = _as_array(image)
    grey = arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    small = _resize_grey(grey, 32)
    freq = (_DCT32 @ small @ _DCT32.T)[:8, :8].ravel()
    bits = freq > np.median(freq[1:])
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def hamming(a: int, b: np.ndarray | Sequence[int]) -> np.ndarray:
    """Bits that differ between hash `a` and each hash in `b`."""
    x = np.bitwise_xor(np.asarray(b, dtype=np.uint64), np.uint64(a))
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def _resize_grey(grey: np.ndarray, n: int) -> np.ndarray:
    from PIL import Image as PILImage

    im = PILImage.fromarray(np.clip(grey, 0, 255).astype(np.uint8), mode="L")
    return np.asarray(im.resize((n, n), PILImage.Resampling.BOX), dtype=np.float64)


def _as_array(image) -> np.ndarray:
    if hasattr(image, "convert"):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an RGB image or an H x W x 3 uint8 array, got {arr.dtype} {arr.shape}")
    return arr


# --- the copy index: real training crops as encoder features and hashes ------------------------------


@dataclass
class CopyIndex:
    """Real training crops, as L2-normalised encoder features and pHashes, with their keys."""

    features: np.ndarray  # N x d float32, unit rows
    hashes: np.ndarray  # N uint64
    keys: list[str]  # public ids of the real images (one image may give several crops)
    meta: dict = field(default_factory=dict)  # encoder name, window, size, fingerprint, ...

    def __len__(self) -> int:
        return len(self.keys)

    def nearest(self, feature: np.ndarray, image_hash: int) -> tuple[float, str, int, str]:
        """(best cosine, its key, smallest hash distance, its key)."""
        cosines = self.features @ feature
        i = int(np.argmax(cosines))
        distances = hamming(image_hash, self.hashes)
        j = int(np.argmin(distances))
        return float(cosines[i]), self.keys[i], int(distances[j]), self.keys[j]

    def save(self, path) -> None:
        import json

        np.savez_compressed(path, features=self.features.astype(np.float16), hashes=self.hashes,
                            keys=np.array(self.keys), meta=np.array(json.dumps(self.meta)))

    @classmethod
    def load(cls, path) -> CopyIndex:
        import json

        with np.load(path, allow_pickle=False) as data:
            return cls(data["features"].astype(np.float32), data["hashes"].astype(np.uint64),
                       [str(k) for k in data["keys"]], json.loads(str(data["meta"])))


def unit_features(encoder, images) -> np.ndarray:
    """Encoder features of uint8 N x 3 x H x W images, scaled to unit length (for cosines)."""
    features = np.asarray(encoder(images), dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-8)


def copy_index_build(encoder, images, keys: Sequence[str], *, meta: dict | None = None) -> CopyIndex:
    arrays = images.permute(0, 2, 3, 1).numpy()
    hashes = np.array([phash(a) for a in arrays], dtype=np.uint64)
    return CopyIndex(unit_features(encoder, images), hashes, list(keys), {"encoder": encoder.name, **(meta or {})})


# --- defect statistics --------------------------------------------------------------------------------


def defect_stats(image) -> dict[str, float]:
    """Cheap statistics of a colour cast, a flat image, a frame and a checkerboard.

    - cast: chroma of the image's mean CIELAB colour when its hue is not a skin hue (skin is
      red-orange-yellow, st.HUE_RANGE), over 40 (a strong chroma); 0 for any skin hue. A
      green, blue or magenta wash scores high; skin of any type scores 0.
    - contrast: the standard deviation of L* (an almost flat image has next to none).
    - frame: the smallest of the four border steps, each the Delta E between the mean colour
      of a 3-pixel border strip and of the strip just inside it. A frame steps on all four
      sides; a photograph rarely does.
    - checker: the mean signed pixel-period 2x2 pattern over the mean step between neighbours:
      the transposed-convolution artefact (the resize-convolution generator avoids it) keeps its
      phase across the image, noise and texture do not.
    """
    arr = _as_array(image)
    lab = st.srgb_to_lab(arr)
    mean = lab.reshape(-1, 3).mean(axis=0)
    hue = float(np.degrees(np.arctan2(mean[2], mean[1])))
    chroma = float(np.hypot(mean[1], mean[2]))
    skin_hue = st.HUE_RANGE[0] - 20 <= hue <= st.HUE_RANGE[1] + 20
    cast = 0.0 if skin_hue else chroma / 40.0
    contrast = float(lab[..., 0].std())
    s = max(2, min(arr.shape[:2]) // 32)
    sides = [
        (lab[:s], lab[s : 2 * s]), (lab[-s:], lab[-2 * s : -s]),
        (lab[:, :s], lab[:, s : 2 * s]), (lab[:, -s:], lab[:, -2 * s : -s]),
    ]
    frame = min(float(np.linalg.norm(a.reshape(-1, 3).mean(0) - b.reshape(-1, 3).mean(0))) for a, b in sides)
    L = lab[..., 0]
    h, w = (L.shape[0] // 2) * 2, (L.shape[1] // 2) * 2
    L = L[:h, :w]
    # The 2x2 pattern of each block, signed: a generator's checkerboard keeps its phase across the
    # image (it comes from the upsampling grid), while noise and texture average out.
    checker = abs(float((L[0::2, 0::2] - L[0::2, 1::2] - L[1::2, 0::2] + L[1::2, 1::2]).mean())) / 4
    detail = (np.abs(np.diff(L, axis=0)).mean() + np.abs(np.diff(L, axis=1)).mean()) / 2
    return {"cast": round(cast, 4), "contrast": round(contrast, 3), "frame": round(frame, 3),
            "checker": round(checker / max(float(detail), 1e-6), 4)}


# --- the gates ------------------------------------------------------------------------------------------


@dataclass
class Judges:
    """What the gates need besides the pixels; any of them may be None when its gate is off."""

    classifier: object | None = None  # generation.classifier.ConditionClassifier
    encoder: object | None = None  # generation.evaluate.CropEncoder
    copy_index: CopyIndex | None = None
    calibration: st.Calibration | str = st.DEFAULT_CALIBRATION


def gates_check_ready(enabled: Sequence[str], judges: Judges, conditions: Sequence[str] = ()) -> None:
    """Raise GateError when an enabled gate lacks its judge or cannot judge a condition."""
    unknown = sorted(set(enabled) - set(GATES))
    if unknown:
        raise GateError(f"unknown gate{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} (gates: {', '.join(GATES)})")
    if "condition" in enabled:
        if judges.classifier is None:
            raise GateError("the condition gate has no classifier")
        missing = sorted(set(conditions) - set(judges.classifier.vocabulary))
        if missing:
            raise GateError(f"the condition classifier was not trained on {', '.join(missing)}")
    if "copy" in enabled and (judges.encoder is None or judges.copy_index is None or not len(judges.copy_index)):
        raise GateError("the near-copy gate has no encoder or no index of real training crops")


@dataclass
class GateRun:
    """Results for a batch: per sample, {gate: {"passed": bool, ...details}}; seconds per gate."""

    results: list[dict[str, dict]]
    seconds: dict[str, float]

    def passed(self, i: int) -> bool:
        return all(r["passed"] for r in self.results[i].values())


def gates_run(
    images: Sequence, *, condition: str, skin_type: int, boxes: Sequence[Sequence[Sequence[float]]],
    judges: Judges, thresholds: GateThresholds, enabled: Sequence[str] = GATES,
) -> GateRun:
    """Run the enabled gates on generated images (PIL or H x W x 3 uint8) of one cell; `boxes`
    are each image's lesion boxes in its pixels."""
    results: list[dict[str, dict]] = [{} for _ in images]
    seconds: dict[str, float] = {}
    if not len(images):
        return GateRun(results, seconds)
    arrays = [_as_array(im) for im in images]
    for name in (g for g in GATES if g in enabled):
        started = time.perf_counter()
        for i, row in enumerate(_GATE_FUNCTIONS[name](arrays, condition, skin_type, boxes, judges, thresholds)):
            results[i][name] = row
        seconds[name] = time.perf_counter() - started
    return GateRun(results, seconds)


def _tone(arrays, condition, skin_type, boxes, judges: Judges, t: GateThresholds) -> list[dict]:
    out = []
    for arr, image_boxes in zip(arrays, boxes):
        try:
            m = st.measure_skin_tone(arr, image_boxes, calibration=judges.calibration)
        except st.NoSkinError:
            out.append({"passed": False, "measured": None, "requested": skin_type, "reason": "too little skin to measure"})
            continue
        out.append({"passed": abs(m.fitzpatrick - skin_type) <= t.tone_max_difference, "measured": m.fitzpatrick,
                    "requested": skin_type, "ita": round(m.ita, 1), "confidence": round(m.confidence, 2)})
    return out


def _condition(arrays, condition, skin_type, boxes, judges: Judges, t: GateThresholds) -> list[dict]:
    clf = judges.classifier
    probs = clf.logits(arrays).softmax(1)
    wanted = clf.vocabulary.index(condition)
    order = probs.argsort(dim=1, descending=True)
    out = []
    for row, ranking in zip(probs, order):
        rank = int((ranking == wanted).nonzero()[0, 0]) + 1
        top = [clf.vocabulary[int(i)] for i in ranking[: t.condition_top_k]]
        out.append({"passed": rank <= t.condition_top_k, "rank": rank, "probability": round(float(row[wanted]), 3),
                    "top": top})
    return out


def _copy(arrays, condition, skin_type, boxes, judges: Judges, t: GateThresholds) -> list[dict]:
    import torch

    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    features = unit_features(judges.encoder, batch)
    out = []
    for arr, feature in zip(arrays, features):
        cosine, cosine_key, distance, hash_key = judges.copy_index.nearest(feature, phash(arr))
        out.append({"passed": cosine < t.copy_max_cosine and distance > t.copy_max_hash_distance,
                    "cosine": round(cosine, 4), "nearest": cosine_key, "hash_distance": distance,
                    "hash_nearest": hash_key})
    return out


def _defects(arrays, condition, skin_type, boxes, judges: Judges, t: GateThresholds) -> list[dict]:
    out = []
    for arr in arrays:
        s = defect_stats(arr)
        found = [name for name, bad in (("colour cast", s["cast"] > t.defect_max_cast),
                                         ("flat image", s["contrast"] < t.defect_min_contrast),
                                         ("frame", s["frame"] > t.defect_max_frame),
                                         ("checkerboard", s["checker"] > t.defect_max_checker)) if bad]
        out.append({"passed": not found, **s, **({"found": found} if found else {})})
    return out


_GATE_FUNCTIONS = {"tone": _tone, "condition": _condition, "copy": _copy, "defects": _defects}
