"""Who and what the demo atlas contains: the imbalance table and the deterministic plan.

The imbalance mirrors real collections (Fitzpatrick 17k, HAM10000, SCIN): light skin types
dominate, dark types V-VI are rare, malignant conditions are under-represented, and some
(condition x skin type) cells are empty - exactly the gaps the GAN is meant to fill.
Django-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Share of each Fitzpatrick type before per-condition skew: I-III = 76 %, V-VI = 10 %.
SKIN_TYPE_WEIGHTS: dict[int, float] = {1: 0.17, 2: 0.33, 3: 0.26, 4: 0.14, 5: 0.07, 6: 0.03}

# Per-condition skew of the skin-type mix (multiplies SKIN_TYPE_WEIGHTS).
SKEW = {
    "flat": (1, 1, 1, 1, 1, 1),
    "light": (1.6, 1.4, 1.0, 0.5, 0.25, 0.15),  # sun-damage conditions: photographed on light skin
    "dark": (0.5, 0.7, 1.0, 1.6, 2.2, 2.2),  # conditions that show (or are studied) more on dark skin
}

# slug: (relative frequency, skin-type skew, skin types with NO images = the empty cells, body sites)
CONDITION_TABLE: dict[str, tuple[float, str, tuple[int, ...], tuple[str, ...]]] = {
    "acne": (9.0, "flat", (), ("face", "forehead", "cheek", "back", "chest")),
    "actinic-keratosis": (2.0, "light", (6,), ("face", "scalp", "forearm", "dorsal hand")),
    "allergic-contact-dermatitis": (5.0, "flat", (), ("wrist", "forearm", "neck", "hand")),
    "alopecia-areata": (2.0, "flat", (6,), ("scalp", "beard area")),
    "androgenetic-alopecia": (2.0, "flat", (), ("scalp",)),
    "basal-cell-carcinoma": (1.5, "light", (6,), ("face", "nose", "cheek", "upper back")),
    "cyst": (3.0, "flat", (), ("back", "neck", "face", "scalp")),
    "eczema": (10.0, "flat", (), ("antecubital fossa", "forearm", "hand", "neck", "popliteal fossa")),
    "folliculitis": (4.0, "flat", (), ("thigh", "buttock", "back", "beard area")),
    "hidradenitis": (2.0, "dark", (1,), ("axilla", "groin", "inframammary")),
    "lentigo": (3.0, "light", (6,), ("face", "dorsal hand", "shoulder")),
    "melanocytic-nevus": (6.0, "flat", (), ("back", "chest", "arm", "leg")),
    "melanoma": (1.0, "light", (5, 6), ("back", "leg", "arm", "chest")),
    "post-inflammatory-hyperpigmentation": (4.0, "dark", (1,), ("face", "cheek", "back", "arm")),
    "psoriasis": (8.0, "flat", (), ("elbow", "knee", "scalp", "lower back", "shin")),
    "scc-sccis": (1.0, "light", (5, 6), ("face", "scalp", "dorsal hand", "lower leg")),
    "sk-isk": (6.0, "flat", (), ("back", "chest", "face", "abdomen")),
    "scar-condition": (3.0, "flat", (), ("chest", "shoulder", "abdomen", "earlobe", "arm")),
    "seborrheic-dermatitis": (5.0, "flat", (), ("scalp", "face", "nasolabial fold", "chest")),
    "skin-tag": (3.0, "flat", (), ("neck", "axilla", "eyelid", "groin")),
    "stasis-dermatitis": (2.0, "light", (6,), ("lower leg", "ankle")),
    "tinea": (5.0, "flat", (), ("trunk", "groin", "thigh", "arm")),
    "tinea-versicolor": (3.0, "flat", (), ("upper back", "chest", "shoulder")),
    "urticaria": (4.0, "flat", (), ("trunk", "arm", "thigh", "back")),
    "verruca-vulgaris": (4.0, "flat", (), ("hand", "finger", "knee", "foot")),
    "vitiligo": (3.0, "flat", (), ("hand", "face", "perioral", "knee", "wrist")),
    "other": (4.0, "flat", (), ("arm", "leg", "trunk", "face")),
}

# How each image's skin-type label was obtained, mirroring a mixed collection.
LABEL_SOURCE_WEIGHTS = {"dermatologist": 0.6, "self_reported": 0.25, "estimated": 0.15}

# Share of cases photographed twice (same patient and lesions, different framing and light).
TWO_IMAGE_CASE_SHARE = 0.15


@dataclass(frozen=True)
class ImageSpec:
    """One demo image to render: everything the renderer needs, and the labels to store."""

    index: int  # position in the plan (stable for a given seed)
    case_id: str
    view: int  # 0 or 1: which photograph of its case
    views: int  # how many photographs the case has
    condition: str
    fitzpatrick_type: int
    body_site: str
    label_source: str
    render_seed: int  # the case's scene seed: both photographs of a case share it


def cell_weights() -> dict[tuple[str, int], float]:
    """Probability of each (condition, skin type) cell; empty cells are absent."""
    total = sum(weight for weight, *_ in CONDITION_TABLE.values())
    cells: dict[tuple[str, int], float] = {}
    for slug, (weight, skew, empty, _sites) in CONDITION_TABLE.items():
        row = {t: SKIN_TYPE_WEIGHTS[t] * SKEW[skew][t - 1] for t in SKIN_TYPE_WEIGHTS if t not in empty}
        row_total = sum(row.values())
        for skin_type, value in row.items():
            cells[(slug, skin_type)] = weight / total * value / row_total
    return cells


def empty_cells() -> list[tuple[str, int]]:
    return [(slug, t) for slug, (_w, _s, empty, _b) in CONDITION_TABLE.items() for t in empty]


def plan_dataset(*, images: int, seed: int) -> list[ImageSpec]:
    """The deterministic list of images for `images` and `seed` (same arguments, same list).

    The last case may keep only its first photograph.
    """
    rng = np.random.default_rng([seed, 0xD3A0])
    cells = cell_weights()
    keys = list(cells)
    probs = np.array([cells[k] for k in keys])
    label_sources = list(LABEL_SOURCE_WEIGHTS)
    label_probs = np.array(list(LABEL_SOURCE_WEIGHTS.values()))
    specs: list[ImageSpec] = []
    case = 0
    while len(specs) < images:
        slug, skin_type = keys[rng.choice(len(keys), p=probs)]
        views = 2 if rng.random() < TWO_IMAGE_CASE_SHARE else 1
        sites = CONDITION_TABLE[slug][3]
        site = sites[rng.integers(len(sites))]
        label_source = label_sources[rng.choice(len(label_sources), p=label_probs)]
        render_seed = int(rng.integers(2**62))
        case_id = f"demo-s{seed}-c{case:05d}"
        for view in range(views):
            specs.append(
                ImageSpec(
                    index=len(specs), case_id=case_id, view=view, views=views, condition=slug,
                    fitzpatrick_type=skin_type, body_site=site, label_source=label_source, render_seed=render_seed,
                )
            )
        case += 1
    # Truncating (rather than planning the last case to fit) keeps image k the same for every
    # `images` > k, so a bigger run of the same seed extends a smaller one.
    return specs[:images]
