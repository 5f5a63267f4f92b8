"""Calibrating the relevance floor from scores (pure numpy: no Django, no model).

The floor is a cosine similarity: when the best hit of a query scores below it, search says
"no confident match". `floor_calibrate` takes the best-hit scores of in-domain queries
(positives: skin photos, descriptions of skin) and of off-topic ones (negatives: a red car, a
flat colour) and returns the highest floor that still keeps `keep` of the positives, with the
precision and recall that choice gives. Keeping real queries matters more than rejecting every
off-topic one: a missed "no confident match" shows weak results labelled as ranked by a small
model; a wrong one hides a real answer (the closest results are still shown apart).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FloorCalibration:
    floor: float  # the relevance floor (cosine of the best hit)
    keep: float  # the share of positives asked to stay above the floor
    recall: float  # share of in-domain queries answered confidently (above the floor)
    rejected: float  # share of off-topic queries answered "no confident match" (below the floor)
    precision: float  # of the queries answered confidently, the share that were in-domain
    positives: int
    negatives: int
    positive_median: float
    negative_median: float

    def as_dict(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


def floor_calibrate(positive: np.ndarray, negative: np.ndarray, *, keep: float = 0.95) -> FloorCalibration:
    """The highest floor under which at most 1 - `keep` of the positive scores fall."""
    positive = np.sort(np.asarray(positive, dtype=np.float64))
    negative = np.asarray(negative, dtype=np.float64)
    if len(positive) == 0 or len(negative) == 0:
        raise ValueError("calibration needs positive and negative scores")
    if not 0 < keep <= 1:
        raise ValueError("keep is a share in (0, 1]")
    # The k-th lowest positive score, k = number of positives we may lose: everything at or
    # above it stays.
    floor = float(positive[int(np.floor((1 - keep) * len(positive)))])
    return floor_evaluate(positive, negative, floor=floor, keep=keep)


def floor_evaluate(positive: np.ndarray, negative: np.ndarray, *, floor: float, keep: float = float("nan")) -> FloorCalibration:
    """Precision and recall of a given floor on these scores (e.g. the shipped setting on new data)."""
    positive, negative = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    kept, let_through = int(np.sum(positive >= floor)), int(np.sum(negative >= floor))
    return FloorCalibration(
        floor=floor,
        keep=keep,
        recall=kept / len(positive),
        rejected=1 - let_through / len(negative),
        precision=kept / (kept + let_through) if kept + let_through else 1.0,
        positives=len(positive),
        negatives=len(negative),
        positive_median=float(np.median(positive)),
        negative_median=float(np.median(negative)),
    )
