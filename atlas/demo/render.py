"""Procedural clinical-style photographs of skin conditions (demo data, NOT clinical).

Django-free: numpy + Pillow, vectorised over pixels (Python loops run only over lesions,
papules and a few drawn lines). The same arguments always give the same bytes.

A case is rendered once as a scene (background, body region, skin of one Fitzpatrick type,
lesions of one condition, hair) and photographed `views` times: each photograph crops and
scales the scene differently and has its own exposure, colour temperature, blur, noise and
JPEG quality, like two phone photos of the same patient.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFilter

Array = np.ndarray
F32 = np.float32

# sRGB (0-1) base colour per Fitzpatrick type, from light to deeply pigmented.
SKIN_BASE: dict[int, tuple[float, float, float]] = {
    1: (0.95, 0.82, 0.75),
    2: (0.90, 0.73, 0.61),
    3: (0.80, 0.60, 0.45),
    4: (0.64, 0.45, 0.31),
    5: (0.45, 0.30, 0.20),
    6: (0.29, 0.19, 0.14),
}
DEPIGMENTED = np.array((0.98, 0.92, 0.89), F32)
SCALE_SILVER = np.array((0.93, 0.92, 0.90), F32)
SCALE_YELLOW = np.array((0.92, 0.84, 0.58), F32)

# Lesion colour models: (multiplier of the local skin colour on type I, on type VI, and
# how far toward depigmented white on I and on VI). Interpolated by skin type, because the
# same process looks different on different skin: erythema is red on light skin and
# violaceous-brown on dark skin, hypopigmentation barely shows on type I and stands out on VI.
TINTS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float, float]] = {
    "erythema": ((1.10, 0.62, 0.62), (0.74, 0.52, 0.60), 0.0, 0.0),
    "pink": ((1.08, 0.74, 0.72), (0.80, 0.64, 0.70), 0.0, 0.0),
    "salmon": ((1.12, 0.70, 0.60), (0.76, 0.58, 0.68), 0.0, 0.0),
    "violaceous": ((0.85, 0.52, 0.62), (0.62, 0.48, 0.58), 0.0, 0.0),
    "brown": ((0.70, 0.55, 0.45), (0.55, 0.45, 0.43), 0.0, 0.0),
    "darkbrown": ((0.52, 0.36, 0.27), (0.42, 0.32, 0.29), 0.0, 0.0),
    "stasis": ((0.82, 0.50, 0.40), (0.68, 0.52, 0.52), 0.0, 0.0),
    "pearly": ((1.06, 0.88, 0.88), (0.72, 0.62, 0.62), 0.12, 0.0),
    "flesh": ((1.02, 0.95, 0.92), (1.04, 0.98, 0.96), 0.0, 0.0),
    "wart": ((0.86, 0.80, 0.68), (1.00, 0.95, 0.90), 0.12, 0.25),
    "sk": ((0.62, 0.49, 0.38), (0.55, 0.46, 0.44), 0.0, 0.0),
    "scar": ((1.08, 0.76, 0.76), (0.66, 0.50, 0.52), 0.15, 0.0),
    "versicolor": ((0.90, 0.76, 0.64), (0.80, 0.64, 0.56), 0.0, 0.0),  # the hyperpigmented form
    "hypopigment": ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), 0.25, 0.40),
    "depigment": ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), 0.7, 0.88),
    "wheal": ((1.08, 0.82, 0.80), (0.92, 0.80, 0.82), 0.04, 0.06),
    "dusky": ((0.80, 0.60, 0.58), (0.62, 0.50, 0.52), 0.0, 0.0),
}


@dataclass(frozen=True)
class Look:
    """How one condition's lesions look; one row of LOOKS."""

    kind: str  # painter: patch | ring | cluster | dome | tag | line | hair-patch | hair-thin
    radius: tuple[float, float]  # lesion radius as a fraction of the frame
    lesions: tuple[int, int]  # lesions (ROI boxes) per image
    tint: str  # colour model in TINTS
    opacity: tuple[float, float] = (0.7, 0.9)
    irregularity: float = 0.1  # border wobble, 0 = round
    softness: float = 0.2  # border width relative to the radius: 0.05 sharp .. 0.8 ill-defined
    elevation: float = 0.0  # relief for shading, 0 = flat
    scale: float = 0.0  # amount of white scale on the surface
    aspect: tuple[float, float] = (1.0, 1.4)  # elongation
    papules: tuple[int, int] = (0, 0)  # sub-elements per lesion (cluster)
    extras: tuple[str, ...] = field(default=())


# One row per taxonomy condition (atlas/taxonomy.py); every row differs in shape, colour or texture.
LOOKS: dict[str, Look] = {
    "acne": Look("cluster", (0.11, 0.17), (1, 2), "erythema", (0.6, 0.9), 0.1, 0.5, 0.9, papules=(9, 18), extras=("pustules", "comedones")),
    "actinic-keratosis": Look("patch", (0.05, 0.09), (1, 3), "pink", (0.5, 0.75), 0.3, 0.35, 0.15, 0.6, extras=("rough",)),
    "allergic-contact-dermatitis": Look("patch", (0.14, 0.2), (1, 1), "erythema", (0.65, 0.85), 0.15, 0.5, 0.1, 0.05, (1.4, 2.4), extras=("vesicles",)),
    "alopecia-areata": Look("hair-patch", (0.12, 0.19), (1, 2), "pink", (0.15, 0.3), 0.08, 0.2),
    "androgenetic-alopecia": Look("hair-thin", (0.28, 0.36), (1, 1), "flesh", (0.2, 0.3), 0.1, 1.0),
    "basal-cell-carcinoma": Look("dome", (0.05, 0.09), (1, 1), "pearly", (0.75, 0.9), 0.15, 0.15, 0.7, extras=("telangiectasia", "rolled", "ulcer")),
    "cyst": Look("dome", (0.07, 0.12), (1, 1), "flesh", (0.5, 0.7), 0.05, 0.4, 1.2, aspect=(1.0, 1.2), extras=("punctum", "shiny")),
    "eczema": Look("patch", (0.16, 0.26), (1, 2), "erythema", (0.45, 0.7), 0.35, 0.7, 0.05, 0.25, extras=("excoriations", "lichen")),
    "folliculitis": Look("cluster", (0.14, 0.22), (1, 2), "erythema", (0.6, 0.85), 0.1, 0.4, 0.6, papules=(12, 24), extras=("pustules", "hairs")),
    "hidradenitis": Look("cluster", (0.13, 0.19), (1, 2), "violaceous", (0.85, 1.0), 0.2, 0.4, 1.3, papules=(3, 6), extras=("tracts",)),
    "lentigo": Look("patch", (0.04, 0.08), (1, 3), "brown", (0.5, 0.75), 0.2, 0.2, extras=("freckles",)),
    "melanocytic-nevus": Look("dome", (0.03, 0.05), (1, 2), "darkbrown", (0.8, 0.95), 0.03, 0.15, 0.3, aspect=(1.0, 1.15)),
    "melanoma": Look("patch", (0.08, 0.13), (1, 1), "darkbrown", (0.9, 1.0), 0.55, 0.1, 0.2, extras=("multitone",)),
    "post-inflammatory-hyperpigmentation": Look("patch", (0.04, 0.09), (2, 3), "brown", (0.55, 0.85), 0.25, 0.45),
    "psoriasis": Look("patch", (0.12, 0.2), (1, 3), "salmon", (0.75, 0.9), 0.2, 0.1, 0.35, 0.85),
    "scc-sccis": Look("dome", (0.06, 0.1), (1, 1), "erythema", (0.7, 0.85), 0.25, 0.2, 0.6, 0.5, extras=("crust",)),
    "sk-isk": Look("patch", (0.05, 0.1), (1, 3), "sk", (0.85, 0.97), 0.15, 0.06, 0.5, aspect=(1.1, 1.6), extras=("cerebriform",)),
    "scar-condition": Look("line", (0.14, 0.26), (1, 1), "scar", (0.75, 0.95), 0.1, 0.25, 0.6, aspect=(5.0, 9.0), extras=("shiny", "sutures")),
    "seborrheic-dermatitis": Look("patch", (0.16, 0.26), (1, 2), "pink", (0.55, 0.75), 0.3, 0.6, 0.05, 0.7, extras=("greasy",)),
    "skin-tag": Look("tag", (0.03, 0.055), (1, 3), "flesh", (0.8, 0.95), 0.05, 0.2, 1.5),
    "stasis-dermatitis": Look("patch", (0.24, 0.32), (1, 1), "stasis", (0.5, 0.75), 0.3, 0.7, 0.0, 0.2, extras=("purpura",)),
    "tinea": Look("ring", (0.12, 0.2), (1, 2), "erythema", (0.65, 0.85), 0.15, 0.15, 0.15, 0.45),
    "tinea-versicolor": Look("cluster", (0.16, 0.24), (1, 2), "versicolor", (0.75, 0.95), 0.25, 0.25, 0.0, 0.2, papules=(14, 30)),
    "urticaria": Look("patch", (0.07, 0.14), (1, 3), "wheal", (0.7, 0.9), 0.4, 0.3, 0.6, extras=("flare",)),
    "verruca-vulgaris": Look("dome", (0.045, 0.08), (1, 3), "wart", (0.8, 0.95), 0.2, 0.12, 0.6, extras=("papillomatous", "black-dots")),
    "vitiligo": Look("patch", (0.12, 0.22), (1, 3), "depigment", (0.85, 0.98), 0.35, 0.12),
    "other": Look("dome", (0.035, 0.07), (1, 2), "dusky", (0.6, 0.8), 0.12, 0.35, 0.7, extras=("shiny",)),
}

HAIR_BY_SITE = {"scalp": 0.6, "beard area": 0.8, "axilla": 0.5, "groin": 0.45}
LIMB_SITES = {"arm", "forearm", "leg", "lower leg", "shin", "thigh", "wrist", "dorsal hand"}


@dataclass(frozen=True)
class Photo:
    """One rendered photograph: JPEG bytes and the lesion boxes (x, y, width, height) in its pixels."""

    jpeg: bytes
    boxes: tuple[tuple[int, int, int, int], ...]


# --- noise and small helpers ----------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> Array:
    """Band-limited value noise with features about `cell` pixels wide, roughly unit std."""
    gh, gw = h // cell + 3, w // cell + 3
    grid = rng.standard_normal((gh, gw)).astype(F32)
    big = np.asarray(PILImage.fromarray(grid).resize((gw * cell, gh * cell), PILImage.Resampling.BICUBIC))
    oy, ox = int(rng.integers(cell)), int(rng.integers(cell))
    out = big[oy : oy + h, ox : ox + w]
    return out / (out.std() + 1e-6)


def _streaks(rng: np.random.Generator, h: int, w: int, length: int, width: int, angle: float) -> Array:
    """Noise stretched along one direction (hair, wood grain, fabric weave)."""
    side = int(max(h, w) * 1.5) + 2
    grid = rng.standard_normal((side // length + 3, side // width + 3)).astype(F32)
    big = PILImage.fromarray(grid).resize((grid.shape[1] * width, grid.shape[0] * length), PILImage.Resampling.BICUBIC)
    big = big.rotate(math.degrees(angle), resample=PILImage.Resampling.BILINEAR)
    arr = np.asarray(big)
    cy, cx = arr.shape[0] // 2, arr.shape[1] // 2
    out = arr[cy - h // 2 : cy - h // 2 + h, cx - w // 2 : cx - w // 2 + w]
    return out / (out.std() + 1e-6)


def _blur(a: Array, sigma: float) -> Array:
    """Separable Gaussian blur of a 2-D float array (loops over kernel taps, not pixels)."""
    if sigma <= 0:
        return a
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(F32)
    k /= k.sum()
    p = np.pad(a, ((r, r), (0, 0)), mode="edge")
    a = sum(k[i] * p[i : i + a.shape[0]] for i in range(2 * r + 1))
    p = np.pad(a, ((0, 0), (r, r)), mode="edge")
    return sum(k[i] * p[:, i : i + a.shape[1]] for i in range(2 * r + 1))


def _smoothstep(x: Array) -> Array:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _lerp(a, b, t):
    return np.asarray(a, F32) + (np.asarray(b, F32) - np.asarray(a, F32)) * t


def _mix(dst: Array, target: Array, alpha: Array) -> None:
    """dst <- dst*(1-alpha) + target*alpha, in place; alpha is 2-D."""
    dst += (target - dst) * alpha[..., None]


# --- the scene ------------------------------------------------------------------------------


@dataclass
class _Scene:
    size: int
    skin_t: float  # 0 for type I .. 1 for type VI
    rng: np.random.Generator
    light: tuple[float, float]  # direction of the key light in the image plane (dy, dx)
    skin: Array  # (C, C, 3) skin colour layer
    height: Array  # relief for elevation shading
    shiny: Array  # where highlights appear
    hair_density: Array  # 0 = no hair .. 1 = dense hair
    furrows: Array  # fine skin lines, 0..1
    inside: Array  # signed distance to the body edge in pixels (positive on skin)


def _background(rng: np.random.Generator, c: int) -> Array:
    """Consumer-photo surroundings: a wall, clothing fabric, bedding or a table."""
    kind = rng.choice(["wall", "stripes", "check", "sheet", "wood", "dark"], p=[0.28, 0.16, 0.12, 0.18, 0.12, 0.14])
    palette = {
        "wall": [(0.86, 0.84, 0.78), (0.80, 0.82, 0.84), (0.78, 0.84, 0.80), (0.90, 0.88, 0.86), (0.72, 0.70, 0.66)],
        "sheet": [(0.92, 0.92, 0.93), (0.76, 0.82, 0.90), (0.88, 0.80, 0.84), (0.84, 0.86, 0.78)],
        "dark": [(0.12, 0.14, 0.22), (0.10, 0.10, 0.11), (0.22, 0.28, 0.40), (0.30, 0.24, 0.20)],
        "fabric": [(0.70, 0.22, 0.20), (0.20, 0.35, 0.60), (0.25, 0.45, 0.30), (0.85, 0.75, 0.30), (0.55, 0.55, 0.58), (0.90, 0.90, 0.90)],
    }
    yy, xx = np.mgrid[0:c, 0:c].astype(F32) / c
    if kind in ("wall", "sheet", "dark"):
        base = np.array(palette[kind][rng.integers(len(palette[kind]))], F32)
        img = np.broadcast_to(base, (c, c, 3)).copy()
        folds = _smooth_noise(rng, c, c, int(rng.integers(24, 64))) * (0.02 if kind == "wall" else 0.07)
        weave = _smooth_noise(rng, c, c, 2) * (0.008 if kind == "wall" else 0.02)
        img *= (1 + folds + weave)[..., None]
        if kind == "wall" and rng.random() < 0.4:  # a door frame or skirting line
            edge = rng.uniform(0.1, 0.9)
            img[(xx if rng.random() < 0.5 else yy) > edge] *= np.array(palette["wall"][rng.integers(5)], F32) / base * 0.95
    elif kind == "wood":
        base = np.array(_lerp((0.55, 0.36, 0.20), (0.78, 0.60, 0.40), rng.random()), F32)
        grain = _streaks(rng, c, c, 40, 3, rng.uniform(0, math.pi))
        img = base * (1 + 0.08 * grain + 0.03 * _smooth_noise(rng, c, c, 30))[..., None]
    else:
        a, b = rng.choice(len(palette["fabric"]), size=2, replace=False)
        ca, cb = np.array(palette["fabric"][a], F32), np.array(palette["fabric"][b], F32)
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(5, 18)
        u = xx * c * math.cos(angle) + yy * c * math.sin(angle)
        stripe = _smoothstep((np.sin(2 * math.pi * u / period) + 0.3) * 3)
        if kind == "check":
            v = -xx * c * math.sin(angle) + yy * c * math.cos(angle)
            stripe = 0.5 * stripe + 0.5 * _smoothstep((np.sin(2 * math.pi * v / period) + 0.3) * 3)
        img = ca + (cb - ca) * stripe[..., None]
        img *= (1 + 0.08 * _smooth_noise(rng, c, c, 40) + 0.03 * _smooth_noise(rng, c, c, 1))[..., None]
    return img.astype(F32)


def _body(rng: np.random.Generator, c: int) -> tuple[Array, Array, Array, tuple[float, float]]:
    """Where the skin is: a limb crossing the frame, a body edge, or a close-up.

    Returns (mask 0..1, signed distance to the edge in px, curvature shading, light direction).
    """
    kind = rng.choice(["limb", "edge", "close"], p=[0.45, 0.4, 0.15])
    yy, xx = (np.mgrid[0:c, 0:c].astype(F32) + 0.5) / c * 2 - 1
    angle = rng.uniform(0, math.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    knots = rng.standard_normal(6).astype(F32) * 0.06
    wobble = np.interp(u, np.linspace(-1.5, 1.5, 6), knots).astype(F32)
    light_angle = rng.uniform(-math.pi + 0.4, -0.4)  # from above, as indoor light mostly is (bumps read as bumps)
    light = (math.sin(light_angle), math.cos(light_angle))
    if kind == "limb":
        half = rng.uniform(0.62, 0.85)
        offset = rng.uniform(-0.15, 0.15)
        across = v - offset - wobble
        dist = half - np.abs(across)
        n = np.clip(across / half, -1, 1)
        side = rng.uniform(-0.5, 0.5)
        shade = 0.45 + 0.55 * np.clip(np.sqrt(1 - n * n) * math.cos(side) + n * math.sin(side), 0, 1) ** 0.7
    else:
        offset = rng.uniform(-0.75, -0.3) if kind == "edge" else rng.uniform(-1.15, -0.85)
        dist = v - offset - wobble
        shade = 0.55 + 0.45 * (1 - np.exp(-np.clip(dist, 0, None) / 0.4))
    dist_px = dist * c / 2
    mask = _smoothstep(dist_px / 2.5 + 0.5)
    return mask.astype(F32), dist_px.astype(F32), shade.astype(F32), light


def _skin_layer(rng: np.random.Generator, c: int, fitzpatrick_type: int) -> tuple[Array, Array]:
    """Skin colour with mottling at several scales, redness, pores and fine skin lines."""
    t = (fitzpatrick_type - 1) / 5
    base = np.array(SKIN_BASE[fitzpatrick_type], F32)
    base *= 1 + 0.035 * rng.standard_normal(3).astype(F32)  # individual undertone
    base *= 1 + 0.05 * rng.standard_normal()
    lum = 1 + 0.045 * _smooth_noise(rng, c, c, 48) + 0.025 * _smooth_noise(rng, c, c, 12) + 0.018 * _smooth_noise(rng, c, c, 3)
    skin = base * lum[..., None]
    redness = np.clip(_smooth_noise(rng, c, c, 28), 0, None) * (0.03 - 0.02 * t)
    skin[..., 1] -= redness * skin[..., 1]
    skin[..., 2] -= redness * skin[..., 2]
    pores = _blur((rng.random((c, c)) < 0.012).astype(F32), 0.7)
    skin *= (1 - 0.5 * pores)[..., None]
    furrows = np.exp(-(_smooth_noise(rng, c, c, 7) / 0.07) ** 2).astype(F32)
    skin *= (1 - 0.06 * furrows)[..., None]
    return skin.astype(F32), furrows


# --- lesions --------------------------------------------------------------------------------


def _window(c: int, cy: float, cx: float, reach: float) -> tuple[slice, slice, Array, Array]:
    """A square window around (cy, cx) clipped to the canvas, with coordinates relative to the centre."""
    y0, y1 = max(0, int(cy - reach)), min(c, int(cy + reach) + 1)
    x0, x1 = max(0, int(cx - reach)), min(c, int(cx + reach) + 1)
    y1, x1 = max(y0, y1), max(x0, x1)  # a window wholly off the canvas is empty
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(F32)
    return slice(y0, y1), slice(x0, x1), yy - cy, xx - cx


def _blob(rng, dy: Array, dx: Array, r: float, *, aspect: float, irregularity: float, softness: float, angle: float | None = None) -> tuple[Array, Array]:
    """An irregular soft-edged shape: (alpha 0..1, normalised radius: 0 centre, 1 border).

    The long axis points along `angle` (radians from the x axis).
    """
    angle = rng.uniform(0, math.pi) if angle is None else angle
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = (-dx * math.sin(angle) + dy * math.cos(angle)) * aspect
    rho = np.hypot(u, v)
    theta = np.arctan2(v, u)
    border = np.ones_like(rho)
    for k in range(2, 8):  # harmonics of the border: small for a round nevus, large for melanoma
        border += irregularity * rng.standard_normal() / k**1.3 * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    border = r * np.clip(border, 0.35, None)
    edge = max(softness * r, 0.8)
    alpha = _smoothstep((border - rho) / edge + 0.5)
    return alpha.astype(F32), (rho / border).astype(F32)


def _tint_target(skin: Array, tint: str, t: float, rng) -> Array:
    light_mult, dark_mult, light_lift, dark_lift = TINTS[tint]
    mult = _lerp(light_mult, dark_mult, t) * (1 + 0.04 * rng.standard_normal(3)).astype(F32)
    target = skin * mult
    lift = light_lift + (dark_lift - light_lift) * t
    if lift:
        target += (DEPIGMENTED - target) * lift
    return target


def _dot(scene: _Scene, cy: float, cx: float, r: float, colour, alpha: float, bump: float = 0.0) -> None:
    ys, xs, dy, dx = _window(scene.size, cy, cx, r + 2)
    if dy.size == 0:
        return
    a = _smoothstep((r - np.hypot(dy, dx)) / 0.9 + 0.5) * alpha
    _mix(scene.skin[ys, xs], np.asarray(colour, F32), a)
    if bump:
        scene.height[ys, xs] += bump * a


def _lines(scene: _Scene, cy: float, cx: float, reach: float, count: int, length: float, colour, alpha: float, width: int = 1) -> None:
    """Thin drawn lines (telangiectasia, excoriations, sutures, sinus tracts) near a centre."""
    rng, c = scene.rng, scene.size
    polylines = []
    for _ in range(count):
        y, x = cy + rng.uniform(-reach, reach), cx + rng.uniform(-reach, reach)
        heading = rng.uniform(0, 2 * math.pi)
        points = [(x, y)]
        for _ in range(3):
            heading += rng.uniform(-0.7, 0.7)
            x, y = x + math.cos(heading) * length / 3, y + math.sin(heading) * length / 3
            points.append((x, y))
        polylines.append(points)
    _draw(scene, polylines, colour, alpha, width)


def _draw(scene: _Scene, polylines: list[list[tuple[float, float]]], colour, alpha: float, width: int = 1) -> None:
    """Draw anti-aliased polylines in `colour`, only within their bounding window (cheap)."""
    c = scene.size
    xs = [x for points in polylines for x, _ in points]
    ys = [y for points in polylines for _, y in points]
    x0, y0 = max(0, int(min(xs)) - 4), max(0, int(min(ys)) - 4)
    x1, y1 = min(c, int(max(xs)) + 5), min(c, int(max(ys)) + 5)
    if x1 <= x0 or y1 <= y0:
        return
    canvas = PILImage.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(canvas)
    for points in polylines:
        draw.line([(x - x0, y - y0) for x, y in points], fill=255, width=width)
    mask = np.asarray(canvas.filter(ImageFilter.GaussianBlur(0.6)), F32) / 255 * alpha
    _mix(scene.skin[y0:y1, x0:x1], np.asarray(colour, F32), mask)


def _paint(scene: _Scene, look: Look, cy: float, cx: float, r: float) -> Array:
    """Paint one lesion of `look` onto the scene; returns its alpha over the canvas (for the box)."""
    rng, c, t = scene.rng, scene.size, scene.skin_t
    extent = np.zeros((c, c), F32)
    aspect = rng.uniform(*look.aspect)
    opacity = rng.uniform(*look.opacity)
    reach = r * max(aspect, 1.0) * (1 + 2 * look.irregularity + look.softness) + 3

    if look.kind == "cluster":
        count = int(rng.integers(look.papules[0], look.papules[1] + 1))
        small = look.tint == "versicolor"
        if small and rng.random() < 0.15 + 0.75 * t:  # tinea versicolor is mostly hypopigmented on dark skin
            look = Look(look.kind, look.radius, look.lesions, "hypopigment", look.opacity, look.irregularity, look.softness, papules=look.papules)
        for _ in range(count):
            py, px = cy + rng.normal(0, r / 2), cx + rng.normal(0, r / 2)
            pr = r * (rng.uniform(0.12, 0.3) if small else rng.uniform(0.07, 0.16) if count > 6 else rng.uniform(0.25, 0.45))
            sub = Look("dome", look.radius, look.lesions, look.tint, look.opacity, 0.25, look.softness, look.elevation, look.scale)
            extent = np.maximum(extent, _paint_blob(scene, sub, py, px, pr, 1.0, opacity))
            if "pustules" in look.extras and rng.random() < 0.35:
                _dot(scene, py, px, max(pr * 0.4, 1.0), (0.93, 0.87, 0.66), 0.7, bump=0.5)
                scene.shiny[int(np.clip(py, 0, c - 1)), int(np.clip(px, 0, c - 1))] += 1
            if "hairs" in look.extras:
                _lines(scene, py, px, 0.5, 1, pr * 3, (0.12, 0.08, 0.06), 0.7)
        if "comedones" in look.extras:
            for _ in range(int(rng.integers(3, 8))):
                _dot(scene, cy + rng.normal(0, r / 1.5), cx + rng.normal(0, r / 1.5), rng.uniform(0.7, 1.3), (0.2, 0.15, 0.12), 0.8)
        if "tracts" in look.extras:
            _lines(scene, cy, cx, r * 0.6, 2, r * 1.4, _tint_target(np.full(3, 0.5, F32), "darkbrown", t, rng) * 0.8, 0.6, width=2)
        return extent

    if look.kind == "tag":
        # A pedunculated bump: a soft shadow cast away from the light, then the bump itself,
        # skin-coloured or light brown, coloured from the unshadowed skin.
        ys, xs, dy, dx = _window(c, cy, cx, r * 2.2)
        original = scene.skin[ys, xs].copy()
        sy, sx = dy + scene.light[0] * r * 0.6, dx + scene.light[1] * r * 0.6
        shadow = _smoothstep((r * 1.05 - np.hypot(sy, sx)) / (r * 0.7) + 0.5) * 0.4
        scene.skin[ys, xs] *= (1 - shadow)[..., None]
        bump, nr = _blob(rng, dy, dx, r, aspect=rng.uniform(1.0, 1.3), irregularity=0.08, softness=0.2)
        tint = "brown" if rng.random() < 0.35 else "flesh"
        _mix(scene.skin[ys, xs], _tint_target(original, tint, t, rng) * (0.95 + 0.1 * (1 - nr[..., None])), bump)
        scene.height[ys, xs] += look.elevation * np.sqrt(np.clip(1 - nr * nr, 0, 1)) * bump * min(r, 12) / 6
        scene.shiny[ys, xs] += 0.4 * bump
        extent[ys, xs] = np.maximum(bump, shadow * 1.5)
        return extent

    if look.kind in ("hair-patch", "hair-thin"):
        ys, xs, dy, dx = _window(c, cy, cx, reach)
        alpha, _ = _blob(rng, dy, dx, r, aspect=aspect, irregularity=look.irregularity, softness=look.softness)
        keep = 0.15 if look.kind == "hair-thin" else 0.0
        scene.hair_density[ys, xs] *= 1 - (1 - keep) * alpha
        _mix(scene.skin[ys, xs], _tint_target(scene.skin[ys, xs], look.tint, t, rng), alpha * opacity)
        extent[ys, xs] = alpha
        return extent

    return _paint_blob(scene, look, cy, cx, r, aspect, opacity)


def _window_to_canvas(c: int, ys: slice, xs: slice, a: Array) -> Array:
    out = np.zeros((c, c), F32)
    out[ys, xs] = a
    return out


def _paint_blob(scene: _Scene, look: Look, cy: float, cx: float, r: float, aspect: float, opacity: float) -> Array:
    rng, c, t = scene.rng, scene.size, scene.skin_t
    reach = r * max(aspect, 1.0) * (1 + 2 * look.irregularity + look.softness) + 3
    ys, xs, dy, dx = _window(c, cy, cx, reach)
    if dy.size == 0:
        return np.zeros((c, c), F32)
    angle = rng.uniform(0, math.pi)
    alpha, nr = _blob(rng, dy, dx, r, aspect=aspect, irregularity=look.irregularity, softness=look.softness, angle=angle)
    h, w = alpha.shape
    skin = scene.skin[ys, xs]
    if look.softness >= 0.5:  # ill-defined: patchy intensity inside the border
        alpha *= np.clip(0.75 + 0.35 * _smooth_noise(rng, h, w, max(2, int(r / 3))), 0, 1)
    shape = alpha.copy()
    if look.kind == "ring":  # active scaly edge, clearer centre
        rim = _smoothstep((nr - 0.45) / 0.3) * alpha
        alpha = np.maximum(rim, alpha * 0.25)

    target = _tint_target(skin, look.tint, t, rng)
    if "multitone" in look.extras:  # melanoma: brown, black, blue-grey and red zones, regression
        tones = np.stack([
            target,
            np.broadcast_to(np.array((0.10, 0.07, 0.07), F32), skin.shape),
            np.broadcast_to(np.array((0.36, 0.37, 0.42), F32) * (1.0 - 0.4 * t), skin.shape),
            skin * np.array((1.08, 0.58, 0.56), F32),
            skin * _lerp((0.70, 0.55, 0.45), (0.6, 0.5, 0.45), t),
        ])
        bias = np.array((1.2, 0.6, -0.8, -1.0, 0.3), F32)[:, None, None]  # mostly brown and black
        weights = np.stack([_smooth_noise(rng, h, w, max(3, int(r / 3))) for _ in tones]) * 2.2 + bias * 2
        weights = np.exp(weights - weights.max(axis=0))
        target = (tones * (weights / weights.sum(axis=0))[..., None]).sum(axis=0)
    if look.tint == "sk":  # stuck-on: tan to dark brown, waxy cerebriform surface
        target *= (1 + 0.18 * _smooth_noise(rng, h, w, max(2, int(r / 4))))[..., None]
    if look.tint == "wheal":  # pale oedematous centre, red flare at the edge
        flare = _smoothstep((nr - 0.8) / 0.3) * (1 - _smoothstep((nr - 1.2) / 0.6))
        _mix(skin, _tint_target(skin, "erythema", t, rng), flare * opacity * 0.45)
    _mix(skin, target, alpha * opacity)

    relief = np.sqrt(np.clip(1 - nr * nr, 0, 1)) * shape if look.kind == "dome" else _blur(shape, max(1.0, r * 0.08))
    bumps = 0.0
    if "rough" in look.extras or "papillomatous" in look.extras or "cerebriform" in look.extras:
        cell = 1 if "rough" in look.extras else 2
        bumps = _smooth_noise(rng, h, w, cell) * shape * (0.5 if "papillomatous" in look.extras else 0.25)
    if "rolled" in look.extras:  # BCC: raised pearly border
        relief = relief * 0.6 + np.exp(-((nr - 0.85) / 0.12) ** 2) * shape * 0.6
    scene.height[ys, xs] += look.elevation * (relief + bumps) * min(r, 12) / 6

    if look.scale:  # white (or greasy yellow) scale: flecks on the surface, thicker towards the middle
        flecks = _smoothstep((_smooth_noise(rng, h, w, 2) - 0.2) * 1.5) * _smoothstep((1 - nr) * 2)
        if look.kind == "ring":  # tinea: scale on the advancing edge only
            flecks = _smoothstep((_smooth_noise(rng, h, w, 2) - 0.2) * 1.5) * alpha
        colour = SCALE_YELLOW if "greasy" in look.extras else SCALE_SILVER
        # scale shows as silvery-white on light skin and ashy-grey on dark skin
        colour = colour * (1 - 0.25 * t)
        _mix(skin, np.broadcast_to(colour, skin.shape), flecks * shape * look.scale * 0.85)
    if "lichen" in look.extras:
        skin *= (1 - 0.25 * scene.furrows[ys, xs] * shape)[..., None]
    if "cerebriform" in look.extras:
        fissures = np.exp(-(_smooth_noise(rng, h, w, 3) / 0.15) ** 2) * shape
        skin *= (1 - 0.35 * fissures)[..., None]
        for _ in range(int(rng.integers(2, 6))):
            _dot(scene, cy + rng.normal(0, r / 3), cx + rng.normal(0, r / 3), rng.uniform(0.6, 1.2), (0.85, 0.80, 0.65), 0.6)
    if "purpura" in look.extras:
        speckle = _smoothstep((_smooth_noise(rng, h, w, 2) - 1.2) * 2) * shape
        _mix(skin, skin * np.array((0.6, 0.3, 0.3), F32), speckle * 0.7)
    if "crust" in look.extras:
        crust = _smoothstep((_smooth_noise(rng, h, w, 3) + 0.3)) * _smoothstep((0.6 - nr) * 4)
        _mix(skin, np.broadcast_to(np.array((0.55, 0.38, 0.22), F32) * (1 - 0.3 * t), skin.shape), crust * 0.85)
    if "ulcer" in look.extras and rng.random() < 0.4:
        _dot(scene, cy, cx, r * 0.25, (0.45, 0.12, 0.10), 0.8)
    if "freckles" in look.extras:  # sun-damaged skin around solar lentigines
        freckle = _tint_target(skin.mean((0, 1)), "brown", t, rng) * 1.05
        for _ in range(int(rng.integers(8, 22))):
            _dot(scene, cy + rng.normal(0, r * 1.4), cx + rng.normal(0, r * 1.4), rng.uniform(1.6, 3.0), freckle, 0.5)
    if "punctum" in look.extras:
        _dot(scene, cy, cx, max(1.0, r * 0.08), (0.18, 0.14, 0.12), 0.85)
    if "black-dots" in look.extras:
        for _ in range(int(rng.integers(3, 9))):
            _dot(scene, cy + rng.normal(0, r / 3), cx + rng.normal(0, r / 3), rng.uniform(0.5, 1.0), (0.18, 0.06, 0.06), 0.8)
    if "telangiectasia" in look.extras:
        _lines(scene, cy, cx, r * 0.6, int(rng.integers(3, 7)), r * 0.9, (0.75, 0.18, 0.22), 0.55)
    if "excoriations" in look.extras:
        _lines(scene, cy, cx, r * 0.8, int(rng.integers(2, 6)), r * 0.35, (0.6, 0.12, 0.1), 0.6)
    if "sutures" in look.extras and rng.random() < 0.6:  # cross-hatch marks across a surgical scar
        along, across = (math.cos(angle), math.sin(angle)), (-math.sin(angle), math.cos(angle))
        half = 1.6 * r / aspect + 2
        marks = []
        for k in np.linspace(-0.8, 0.8, int(rng.integers(4, 9))):
            my, mx = cy + along[1] * k * r, cx + along[0] * k * r
            marks.append([(mx - across[0] * half, my - across[1] * half), (mx + across[0] * half, my + across[1] * half)])
        _draw(scene, marks, _tint_target(np.full(3, 0.6, F32), "scar", t, rng), 0.45)
    if "vesicles" in look.extras:
        for _ in range(int(rng.integers(6, 16))):
            _dot(scene, cy + rng.normal(0, r / 2.5), cx + rng.normal(0, r / 2.5), rng.uniform(1.0, 2.0), (0.95, 0.88, 0.80), 0.45, bump=1.2)
            scene.shiny[ys, xs] += 0.3 * shape
    if "shiny" in look.extras or look.tint == "pearly":
        scene.shiny[ys, xs] += shape
    return _window_to_canvas(c, ys, xs, shape)


def _place(scene: _Scene, rng, r: float, spread: float, taken: list[tuple[float, float, float]], area: tuple[int, int, int, int]) -> tuple[float, float, float]:
    """A lesion centre on skin, inside the area every photograph of the case shows, away from other lesions."""
    y0, x0, y1, x1 = area
    for shrink in (1.0, 0.8, 0.6, 0.45):
        rr = r * shrink
        ok = scene.inside[y0:y1, x0:x1] > rr * 0.8 + 2  # mostly on skin
        margin = int(rr * spread + 2)  # and wholly in the frame, as a photographer would centre it
        ok[:margin] = ok[max(0, ok.shape[0] - margin) :] = False
        ok[:, :margin] = ok[:, max(0, ok.shape[1] - margin) :] = False
        candidates = np.argwhere(ok)
        for _ in range(8):
            if len(candidates) == 0:
                break
            y, x = candidates[rng.integers(len(candidates))]
            cy, cx = float(y + y0), float(x + x0)
            if all(math.hypot(cy - ty, cx - tx) > (rr + tr) * 0.9 for ty, tx, tr in taken):
                return cy, cx, rr
    # No room: the point deepest inside both the skin and the frame, with a smaller lesion.
    ys, xs = np.arange(y1 - y0, dtype=F32), np.arange(x1 - x0, dtype=F32)
    to_frame = np.minimum(np.minimum(ys, ys[::-1])[:, None], np.minimum(xs, xs[::-1])[None, :])
    y, x = np.unravel_index(np.argmax(np.minimum(scene.inside[y0:y1, x0:x1], to_frame)), (y1 - y0, x1 - x0))
    return float(y + y0), float(x + x0), r * 0.45


def _hair(scene: _Scene, rng, fitzpatrick_type: int) -> None:
    """Hair as thin curved strands: dense and long on the scalp, short and sparse on limbs.

    Strands are drawn everywhere at the peak density; the density map then fades them,
    so a bald patch (alopecia areata) or a thinned crown (androgenetic alopecia) shows skin.
    """
    c = scene.size
    peak = float(scene.hair_density.max())
    if peak <= 0.01:
        return
    scalp = peak >= 0.45
    count = int((1400 if scalp else 160) * peak * (c / 256) ** 2)
    heading = rng.uniform(0, 2 * math.pi) + rng.normal(0, 0.3 if scalp else 0.45, count)
    curl = rng.normal(0, 0.12, count)
    step = rng.uniform(*((8, 22) if scalp else (2.5, 6)), count) / 3
    xs = np.empty((count, 4), F32)
    ys = np.empty((count, 4), F32)
    xs[:, 0], ys[:, 0] = rng.uniform(-10, c + 10, count), rng.uniform(-10, c + 10, count)
    for k in range(1, 4):  # three segments per strand, each turning a little
        heading = heading + curl
        xs[:, k] = xs[:, k - 1] + np.cos(heading) * step
        ys[:, k] = ys[:, k - 1] + np.sin(heading) * step
    shades = rng.integers(110, 256, count)
    canvas = PILImage.new("L", (c, c), 0)
    draw = ImageDraw.Draw(canvas)
    for x, y, shade in zip(xs.tolist(), ys.tolist(), shades.tolist()):
        draw.line(list(zip(x, y)), fill=shade, width=1)
    strands = np.asarray(canvas.filter(ImageFilter.GaussianBlur(0.35)), F32) / 255
    alpha = strands * (0.9 if scalp else 0.5) * np.clip(scene.hair_density / peak, 0, 1)
    if fitzpatrick_type <= 2 and rng.random() < 0.35:
        colour = np.array((0.55, 0.42, 0.28), F32)  # fair hair
    elif rng.random() < 0.1:
        colour = np.array((0.62, 0.60, 0.58), F32)  # grey
    else:
        colour = np.array((0.12, 0.08, 0.06), F32) * rng.uniform(0.7, 1.3)
    _mix(scene.skin, np.broadcast_to(colour, scene.skin.shape), alpha)


def _scene(*, condition: str, fitzpatrick_type: int, body_site: str, seed: int, canvas: int, area: tuple[int, int, int, int]) -> tuple[Array, list[Array]]:
    rng = np.random.default_rng([seed, 1])
    look = LOOKS[condition]
    background = _background(rng, canvas)
    mask, inside, body_shade, light = _body(rng, canvas)
    skin, furrows = _skin_layer(rng, canvas, fitzpatrick_type)
    density = HAIR_BY_SITE.get(body_site, 0.0)
    if body_site in LIMB_SITES and rng.random() < 0.6:
        density = rng.uniform(0.1, 0.3)
    if look.kind in ("hair-patch", "hair-thin"):
        density = 1.0
    scene = _Scene(
        size=canvas, skin_t=(fitzpatrick_type - 1) / 5, rng=rng, light=light, skin=skin,
        height=np.zeros((canvas, canvas), F32), shiny=np.zeros((canvas, canvas), F32),
        hair_density=np.full((canvas, canvas), density, F32), furrows=furrows, inside=inside,
    )
    taken: list[tuple[float, float, float]] = []
    extents: list[Array] = []
    for _ in range(int(rng.integers(look.lesions[0], look.lesions[1] + 1))):
        r = rng.uniform(*look.radius) * canvas
        spread = 1.0 if look.kind in ("hair-thin", "ring") else 1 + look.irregularity
        cy, cx, r = _place(scene, rng, r, spread, taken, area)
        taken.append((cy, cx, r))
        extents.append(_paint(scene, look, cy, cx, r) * (mask > 0.5))

    # Elevation shading (Lambert, light from direction `light`): slopes facing the light brighten.
    gy, gx = np.gradient(_blur(scene.height, 0.8))
    lit = 1 - 0.9 * (gy * light[0] + gx * light[1])
    spec = np.clip(lit - 1, 0, None) ** 1.5 * np.clip(_blur(scene.shiny, 1.0), 0, 1) * 2.5
    skin = scene.skin * np.clip(lit, 0.55, 1.5)[..., None] + spec[..., None] * 0.6
    scene.skin = skin
    _hair(scene, rng, fitzpatrick_type)
    skin = scene.skin * body_shade[..., None]
    shadow = 1 - 0.35 * np.exp(-np.clip(-inside, 0, None) / (canvas * 0.04))  # the body's soft shadow on what is behind it
    image = background * shadow[..., None] * (1 - mask[..., None]) + skin * mask[..., None]
    return image, extents


def _views(rng: np.random.Generator, canvas: int, views: int) -> list[tuple[int, int, int]]:
    """Crop windows (y, x, side) of each photograph; one photograph sees the whole canvas."""
    if views == 1:
        return [(0, 0, canvas)]
    out = []
    for _ in range(views):
        side = int(rng.integers(int(canvas * 0.86), canvas + 1))
        out.append((int(rng.integers(0, canvas - side + 1)), int(rng.integers(0, canvas - side + 1)), side))
    return out


def _photograph(image: Array, rng: np.random.Generator, size: int, window: tuple[int, int, int], quality_range=(72, 93)) -> bytes:
    """Camera and phone: crop, exposure, white balance, vignette, noise, blur, JPEG."""
    y, x, side = window
    crop = image[y : y + side, x : x + side]
    yy, xx = (np.mgrid[0:side, 0:side].astype(F32) + 0.5) / side * 2 - 1
    # Auto-exposure: phones brighten dark scenes part of the way toward mid-grey.
    gain = rng.uniform(0.85, 1.1) * float(np.clip((0.42 / max(float(crop.mean()), 0.05)) ** 0.35, 0.85, 1.4))
    temperature = float(np.clip(rng.normal(0, 1), -2, 2))
    balance = np.array((1 + 0.05 * temperature, 1 + 0.005 * temperature, 1 - 0.07 * temperature), F32)
    direction = rng.uniform(0, 2 * math.pi)
    falloff = 1 + rng.uniform(0.0, 0.15) * (xx * math.cos(direction) + yy * math.sin(direction))
    vignette = 1 - rng.uniform(0.05, 0.3) * (xx * xx + yy * yy) / 2
    out = crop * (balance * gain) * (falloff * vignette)[..., None]
    out += rng.standard_normal(out.shape, dtype=F32) * rng.uniform(0.006, 0.02)
    out += 0.012 * _smooth_noise(rng, side, side, 2)[..., None] * rng.standard_normal(3).astype(F32)  # chroma noise
    gamma_lut = (np.linspace(0, 1, 256) ** rng.uniform(0.92, 1.08) * 255 + 0.5).astype(np.uint8)
    photo = PILImage.fromarray(gamma_lut[(np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)], "RGB")
    if side != size:
        photo = photo.resize((size, size), PILImage.Resampling.BILINEAR)
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.25, 0.9)))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=int(rng.integers(*quality_range)))
    return buffer.getvalue()


def _box(extent: Array, window: tuple[int, int, int], size: int) -> tuple[int, int, int, int] | None:
    y, x, side = window
    ys, xs = np.nonzero(extent[y : y + side, x : x + side] > 0.25)
    if len(ys) == 0:
        return None
    scale = size / side
    x0, y0 = max(0, math.floor((xs.min() - 1) * scale)), max(0, math.floor((ys.min() - 1) * scale))
    x1, y1 = min(size, math.ceil((xs.max() + 2) * scale)), min(size, math.ceil((ys.max() + 2) * scale))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def render_case(*, condition: str, fitzpatrick_type: int, body_site: str = "", seed: int, views: int = 1, size: int = 256) -> list[Photo]:
    """Photographs of one procedural case: `views` photos of the same scene, each with its boxes."""
    if condition not in LOOKS:
        raise ValueError(f"no demo look for condition {condition!r}")
    if fitzpatrick_type not in SKIN_BASE:
        raise ValueError(f"Fitzpatrick type must be 1-6, not {fitzpatrick_type!r}")
    canvas = size if views == 1 else int(size * 1.2)
    windows = _views(np.random.default_rng([seed, 2]), canvas, views)
    area = (max(w[0] for w in windows), max(w[1] for w in windows), min(w[0] + w[2] for w in windows), min(w[1] + w[2] for w in windows))
    image, extents = _scene(condition=condition, fitzpatrick_type=fitzpatrick_type, body_site=body_site, seed=seed, canvas=canvas, area=area)
    photos = []
    for number, window in enumerate(windows):
        jpeg = _photograph(image, np.random.default_rng([seed, 3, number]), size, window)
        boxes = tuple(box for box in (_box(extent, window, size) for extent in extents) if box is not None)
        photos.append(Photo(jpeg=jpeg, boxes=boxes))
    return photos
