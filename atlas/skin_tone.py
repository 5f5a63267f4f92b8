"""Skin-tone measurement: the colour of the non-lesion skin in a photograph, its ITA angle, the
Fitzpatrick band and the nearest Monk tone. Django-free (numpy only).

How a measurement is made (docs/skin-tone.md):

1. Lesion boxes are excluded with a margin around each (lesions spill over their boxes).
2. Every remaining pixel goes to CIELAB (sRGB, D65). Pixels outside a skin-colour gamut are
   dropped: grey or saturated ones (walls, sheets, clothing), hues that are not red-yellow
   (blue fabric, green walls), near-black and specular white.
3. Per-pixel ITA = atan((L* - 50) / b*) in degrees. Shading, curvature and vignetting only
   darken skin, so the lit half of the skin pixels (ITA at or above their median) holds the
   skin's own colour; its median L*, a*, b* is the measurement. Medians keep a minority of
   hairs, shadows and skin-coloured background (wood) from pulling it.
4. That colour's ITA, after the calibration, gives the Fitzpatrick band (Chardon et al. 1991
   thresholds) and the colour itself the nearest Monk tone.

(On the demo atlas the lit-half median agreed with the labels more often than the median of
all skin pixels or the mode of a per-pixel ITA histogram: 0.96 against 0.92 within one type,
docs/skin-tone.md.)

Confidence (0..1) = coverage x concentration: coverage is the skin-gamut share of the
non-lesion area (full credit from `FULL_COVERAGE` up), concentration the share of those pixels
within `AGREEING_ITA` degrees of the result. A clean patch of skin scores 1; a crop that is
mostly wall, or skin split between two tones, scores low. Too few skin pixels: `NoSkinError`.

ITA -> Fitzpatrick is the literature's usual proxy (Chardon's bands describe skin colour
categories, not the Fitzpatrick sun-reactivity types); the bands are what the issue asks for,
and the calibration below makes them agree with labels on a known data set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

# Chardon et al. (1991) ITA bands, from light to dark: ITA > 55 very light (I), 41-55 light (II),
# 28-41 intermediate (III), 10-28 tan (IV), -30-10 brown (V), < -30 dark (VI).
CHARDON_THRESHOLDS: tuple[float, ...] = (55.0, 41.0, 28.0, 10.0, -30.0)
FITZPATRICK_NAMES = {1: "very light", 2: "light", 3: "intermediate", 4: "tan", 5: "brown", 6: "dark"}

# The Monk Skin Tone scale's ten swatches (Monk 2019; skintone.google), light to dark.
MONK_SWATCHES: dict[int, str] = {
    1: "#f6ede4", 2: "#f3e7db", 3: "#f7ead0", 4: "#eadaba", 5: "#d7bd96",
    6: "#a07e56", 7: "#825c43", 8: "#604134", 9: "#3a312a", 10: "#292420",
}

# Skin-colour gamut in CIELAB (wide enough for type I to VI, under warm and cool light).
L_RANGE = (8.0, 97.0)  # below: black hair and deep shadow; above: specular highlights
CHROMA_RANGE = (3.5, 60.0)  # below: grey walls and sheets (Monk 10 is ~3.8); above: saturated fabric
HUE_RANGE = (10.0, 95.0)  # degrees of atan2(b*, a*): red-orange-yellow; blue and green are not skin
AGREEING_ITA = 20.0  # pixels within this many ITA degrees of the result count as agreeing with it
MIN_PIXELS = 40  # fewer skin-coloured pixels than this: no measurement
FULL_COVERAGE = 0.4  # share of the non-lesion area in the skin gamut that earns full coverage credit
MAX_SIDE = 256  # larger images are reduced (box-averaged) before measuring; the result barely moves


class NoSkinError(ValueError):
    """Too few skin-coloured pixels outside the lesion boxes to measure a tone."""


@dataclass(frozen=True)
class Calibration:
    """A monotone piecewise-linear map from measured ITA to calibrated ITA (identity outside the
    knots' span is extrapolated along the end segments). No knots: the identity."""

    name: str
    knots: tuple[tuple[float, float], ...] = ()  # (measured ITA, calibrated ITA), increasing
    note: str = ""

    def apply(self, ita: float) -> float:
        if len(self.knots) < 2:
            return ita
        xs, ys = zip(*self.knots)
        if ita <= xs[0]:
            i = 0
        elif ita >= xs[-1]:
            i = len(xs) - 2
        else:
            return float(np.interp(ita, xs, ys))
        slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
        return float(ys[i] + slope * (ita - xs[i]))


# Chardon's thresholds as published, on uncorrected ITA: for clinical photographs.
CHARDON = Calibration("chardon-1991", (), "Chardon et al. 1991 thresholds on the measured ITA, no correction.")

# Fitted on the procedural demo atlas (`seed_demo`, seed 0: 3,000 images, 2,991 measurable), whose
# renderer knows each image's true type: each knot maps the median measured ITA of the images
# labelled with one type to the centre of that type's Chardon band (65 and -50 stand for the
# open-ended bands I and VI). The renderer's exposure, white balance and shading make measured
# ITA run 10-20 degrees darker than its base skin colours, and unevenly so across types.
# Refit (docs/skin-tone.md) when the renderer changes; do not use it for clinical photographs.
DEMO_ATLAS = Calibration(
    "demo-atlas",
    ((-60.1, -50.0), (-33.0, -10.0), (-5.5, 19.0), (14.7, 34.5), (34.7, 48.0), (54.3, 65.0)),
    "Per-type median measured ITA on the demo atlas (seed 0) -> Chardon band centres.",
)

CALIBRATIONS: dict[str, Calibration] = {CHARDON.name: CHARDON, DEMO_ATLAS.name: DEMO_ATLAS}
DEFAULT_CALIBRATION = CHARDON.name


def calibration_get(name: str) -> Calibration:
    if name not in CALIBRATIONS:
        raise ValueError(f"unknown skin-tone calibration {name!r}: choose from {sorted(CALIBRATIONS)}")
    return CALIBRATIONS[name]


@dataclass(frozen=True)
class ToneMeasurement:
    lab: tuple[float, float, float]  # median CIELAB of the lit half of the skin pixels
    rgb: tuple[int, int, int]  # the same colour in sRGB, for display
    ita_measured: float  # degrees, before calibration
    ita: float  # degrees, after calibration: what the band is read from
    fitzpatrick: int  # 1-6
    monk: int  # 1-10, nearest swatch in CIELAB (Delta E 1976)
    confidence: float  # 0..1, see the module docstring
    coverage: float  # skin-gamut pixels / non-lesion pixels
    concentration: float  # share of skin-gamut pixels within AGREEING_ITA of the result
    spread: float  # interquartile range of per-pixel ITA over the skin pixels, degrees
    pixels: int  # skin-gamut pixels outside the lesions
    calibration: str

    def as_dict(self) -> dict:
        out = asdict(self)
        for key in ("ita_measured", "ita", "confidence", "coverage", "concentration", "spread"):
            out[key] = round(out[key], 3)
        out["lab"] = [round(v, 2) for v in self.lab]
        out["rgb"] = list(self.rgb)
        return out


# --- colour -------------------------------------------------------------------------------------

_SRGB_TO_XYZ = np.array([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
])
_D65 = np.array([0.95047, 1.0, 1.08883])
_EPS = (6 / 29) ** 3


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8 0-255, or float 0-1) ... x 3 -> CIELAB (D65) ... x 3, float64."""
    rgb = np.asarray(rgb)
    c = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65
    f = np.where(xyz > _EPS, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_srgb(lab: Sequence[float]) -> tuple[int, int, int]:
    L, a, b = (float(v) for v in lab)
    fy = (L + 16) / 116
    f = np.array([fy + a / 500, fy, fy - b / 200])
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _D65
    linear = np.clip(np.linalg.solve(_SRGB_TO_XYZ, xyz), 0, 1)
    c = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return tuple(int(round(v * 255)) for v in np.clip(c, 0, 1))  # type: ignore[return-value]


def ita_degrees(L: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    """Individual Typology Angle: atan((L* - 50) / b*) in degrees (b* > 0 for skin)."""
    return np.degrees(np.arctan2(np.asarray(L, dtype=np.float64) - 50, np.asarray(b, dtype=np.float64)))


def fitzpatrick_from_ita(ita: float) -> int:
    """The Chardon band as a Fitzpatrick type: > 55 -> 1, (41, 55] -> 2, ..., <= -30 -> 6."""
    for skin_type, threshold in enumerate(CHARDON_THRESHOLDS, start=1):
        if ita > threshold:
            return skin_type
    return 6


_MONK_LAB = {tone: srgb_to_lab(np.array([int(h[i : i + 2], 16) for i in (1, 3, 5)], np.uint8)) for tone, h in MONK_SWATCHES.items()}


def monk_nearest(lab: Sequence[float]) -> int:
    target = np.asarray(lab, dtype=np.float64)
    return min(_MONK_LAB, key=lambda tone: float(np.sum((_MONK_LAB[tone] - target) ** 2)))


# --- measurement --------------------------------------------------------------------------------


def _as_array(image) -> np.ndarray:
    """PIL image or H x W x 3 uint8 array -> H x W x 3 uint8 array."""
    if hasattr(image, "convert"):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an RGB image or an H x W x 3 uint8 array, got {arr.dtype} {arr.shape}")
    return arr


def _reduce(arr: np.ndarray, boxes: Sequence[Sequence[float]]) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    factor = math.ceil(max(arr.shape[:2]) / MAX_SIDE)
    if factor <= 1:
        return arr, [tuple(float(v) for v in box) for box in boxes]
    h, w = arr.shape[0] // factor * factor, arr.shape[1] // factor * factor
    small = arr[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).mean(axis=(1, 3))
    return small.round().astype(np.uint8), [tuple(float(v) / factor for v in box) for box in boxes]


def lesion_mask(
    height: int, width: int, boxes: Sequence[Sequence[float]], *, margin: float = 0.15, pad: float = 1.0
) -> np.ndarray:
    """True where a pixel lies inside a box grown by `margin` x its longer side + `pad` px each way."""
    mask = np.zeros((height, width), dtype=bool)
    for x, y, w, h in boxes:
        grow = margin * max(w, h) + pad
        x0, y0 = max(0, math.floor(x - grow)), max(0, math.floor(y - grow))
        x1, y1 = min(width, math.ceil(x + w + grow)), min(height, math.ceil(y + h + grow))
        mask[y0:y1, x0:x1] = True
    return mask


def skin_gamut(lab: np.ndarray) -> np.ndarray:
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a))
    return (
        (L >= L_RANGE[0]) & (L <= L_RANGE[1])
        & (chroma >= CHROMA_RANGE[0]) & (chroma <= CHROMA_RANGE[1])
        & (hue >= HUE_RANGE[0]) & (hue <= HUE_RANGE[1])
    )


def skin_share(image, boxes: Sequence[Sequence[float]] = ()) -> float:
    """The share of pixels outside `boxes` (no margin) whose colour is in the skin gamut: how much
    of a crop is skin rather than background, hair or cloth. 0.0 when the boxes cover it all."""
    arr, boxes = _reduce(_as_array(image), boxes)
    outside = ~lesion_mask(arr.shape[0], arr.shape[1], boxes, margin=0.0, pad=0.0)
    if not outside.any():
        return 0.0
    return float(skin_gamut(srgb_to_lab(arr[outside])).mean())


def measure_skin_tone(
    image, boxes: Sequence[Sequence[float]] = (), *, calibration: Calibration | str = DEFAULT_CALIBRATION,
    margin: float = 0.15,
) -> ToneMeasurement:
    """Measure the non-lesion skin of `image` (PIL image or H x W x 3 uint8) whose lesions lie in
    `boxes` ((x, y, width, height) in its pixels). Raises NoSkinError when too little skin shows."""
    cal = calibration_get(calibration) if isinstance(calibration, str) else calibration
    arr, boxes = _reduce(_as_array(image), boxes)
    height, width = arr.shape[:2]
    outside = ~lesion_mask(height, width, boxes, margin=margin)
    if outside.sum() < MIN_PIXELS:  # boxes cover the image: fall back to what the boxes leave at no margin
        outside = ~lesion_mask(height, width, boxes, margin=0.0, pad=0.0)
    lab = srgb_to_lab(arr[outside])
    candidates = lab[skin_gamut(lab)]
    if len(candidates) < MIN_PIXELS:
        raise NoSkinError(f"only {len(candidates)} skin-coloured pixels outside the lesions (need {MIN_PIXELS})")
    pixel_ita = ita_degrees(candidates[:, 0], candidates[:, 2])
    lit = candidates[pixel_ita >= np.median(pixel_ita)]  # shading only darkens: the lit half is the skin's colour
    L, a, b = (float(v) for v in np.median(lit, axis=0))
    ita_measured = float(ita_degrees(L, b))
    ita = cal.apply(ita_measured)
    q1, q3 = np.percentile(pixel_ita, [25, 75])
    coverage = len(candidates) / max(1, int(outside.sum()))
    concentration = float(np.mean(np.abs(pixel_ita - ita_measured) <= AGREEING_ITA))
    return ToneMeasurement(
        lab=(L, a, b), rgb=lab_to_srgb((L, a, b)), ita_measured=ita_measured, ita=ita,
        fitzpatrick=fitzpatrick_from_ita(ita), monk=monk_nearest((L, a, b)),
        confidence=min(1.0, coverage / FULL_COVERAGE) * concentration, coverage=coverage,
        concentration=concentration, spread=float(q3 - q1), pixels=len(candidates), calibration=cal.name,
    )
