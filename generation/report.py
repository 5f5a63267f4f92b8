"""The GAN report's arithmetic (issue 12): GAN-test, skin tone in band, diversity, FD / KID.
Django-free: the service (generation.quality.gan_report) gathers images and calls these.

- GAN-test (Shmelkov et al., "How good is my GAN?", ECCV 2018): a classifier trained on real
  images only scores real held-out images and images generated from held-out layouts. A
  generator whose images the classifier recognises about as well as real ones draws the
  condition; one near chance draws something else.
- Tone in band: the Fitzpatrick type measured from the generated non-lesion skin
  (atlas.skin_tone) against the type the map asked for; the share within one type, per type.
- Diversity: mean pairwise feature distance among several seeds of one map, over the mean
  pairwise distance among real images of the same (condition, skin type) cell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from atlas import skin_tone as st
from generation.classifier import ConditionClassifier, accuracy_table


def gan_test(
    clf: ConditionClassifier, *, real_images, real_labels: Sequence[str], real_types: Sequence[int | None],
    synthetic_images, synthetic_labels: Sequence[str], synthetic_types: Sequence[int | None],
) -> dict:
    """Top-1 / top-3 of the real-only classifier on real held-out images and on synthetic ones,
    overall, per condition and per skin type (the requested type for synthetic images)."""
    real = accuracy_table(clf, real_images, list(real_labels), list(real_types))
    synthetic = accuracy_table(clf, synthetic_images, list(synthetic_labels), list(synthetic_types))
    ratio = synthetic["top1"] / real["top1"] if real["top1"] else None
    return {"real": real, "synthetic": synthetic, "synthetic_over_real_top1": None if ratio is None else round(ratio, 4)}


def tone_in_band(
    images: Sequence, boxes: Sequence[Sequence[Sequence[int]]], requested: Sequence[int], *,
    calibration: st.Calibration | str = st.DEFAULT_CALIBRATION,
) -> dict:
    """Measure each image's non-lesion skin; per requested type, the share measured within one
    type of it. An image with too little skin to measure counts as out of band."""
    within: dict[int, list[bool]] = defaultdict(list)
    measured_types: dict[int, list[int | None]] = defaultdict(list)
    for image, image_boxes, want in zip(images, boxes, requested):
        try:
            got: int | None = st.measure_skin_tone(image, image_boxes, calibration=calibration).fitzpatrick
        except st.NoSkinError:
            got = None
        within[want].append(got is not None and abs(got - want) <= 1)
        measured_types[want].append(got)
    per_type = {
        str(t): {"n": len(hits), "within_one": round(float(np.mean(hits)), 4),
                 "exact": round(float(np.mean([m == t for m in measured_types[t]])), 4),
                 "measured": {str(k): sum(1 for m in measured_types[t] if m == k) for k in (1, 2, 3, 4, 5, 6, None)}}
        for t, hits in sorted(within.items())
    }
    shares = [row["within_one"] for row in per_type.values()]
    return {"per_type": per_type, "within_one_min": min(shares) if shares else None,
            "within_one_mean": round(float(np.mean(shares)), 4) if shares else None,
            "calibration": calibration if isinstance(calibration, str) else calibration.name}


def mean_pairwise_distance(features: np.ndarray) -> float:
    """Mean Euclidean distance over all unordered pairs of rows (needs two or more)."""
    x = np.asarray(features, dtype=np.float64)
    if len(x) < 2:
        raise ValueError("need at least two feature vectors")
    sq = (x * x).sum(1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None)
    upper = np.triu_indices(len(x), k=1)
    return float(np.sqrt(d2[upper]).mean())


def diversity_ratio(seed_features: Sequence[np.ndarray], real_cell_features: Sequence[np.ndarray]) -> dict:
    """Per map: mean pairwise distance among its seeds' features, and among real images of its
    cell. The ratio is mean(synthetic) / mean(real) over maps whose cell has two or more real
    images; 1 means the seeds vary as much as real photographs of that cell do."""
    synthetic, real = [], []
    for seeds, cell in zip(seed_features, real_cell_features):
        if len(seeds) < 2 or len(cell) < 2:
            continue
        synthetic.append(mean_pairwise_distance(seeds))
        real.append(mean_pairwise_distance(cell))
    if not synthetic:
        return {"ratio": None, "maps": 0, "synthetic_mean": None, "real_mean": None}
    return {"ratio": round(float(np.mean(synthetic) / np.mean(real)), 4), "maps": len(synthetic),
            "synthetic_mean": round(float(np.mean(synthetic)), 4), "real_mean": round(float(np.mean(real)), 4)}
