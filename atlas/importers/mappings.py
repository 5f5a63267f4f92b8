"""Default mappings from public datasets' labels to our conditions (seeded by migration 0003).

Curators edit them in the admin (ConditionLabelMapping). A label maps only where it truly is
one of our conditions; everything else stays unmapped and every import reports it with a
count, so nothing is dropped silently. Keys are lower-cased labels as the datasets write them.
"""

from __future__ import annotations

from atlas.taxonomy import SEED_CONDITIONS

# HAM10000 `dx`. akiec holds actinic keratoses and intraepithelial carcinoma (Bowen's); bkl holds
# seborrhoeic keratoses, solar lentigines and lichen-planus-like keratoses. df and vasc are
# benign lesions outside our 26 conditions.
HAM10000 = {
    "akiec": "actinic-keratosis",
    "bcc": "basal-cell-carcinoma",
    "bkl": "sk-isk",
    "df": "other",
    "mel": "melanoma",
    "nv": "melanocytic-nevus",
    "vasc": "other",
}

# PAD-UFES-20 `diagnostic`. The paper counts Bowen's disease (BOD) separately; the released
# metadata folds it into SCC. Both are squamous cell carcinoma (in situ).
PAD_UFES_20 = {
    "ack": "actinic-keratosis",
    "bcc": "basal-cell-carcinoma",
    "bod": "scc-sccis",
    "mel": "melanoma",
    "nev": "melanocytic-nevus",
    "scc": "scc-sccis",
    "sek": "sk-isk",
}

# Fitzpatrick17k `label` (114 conditions). Deliberately left unmapped, among others: becker nevus,
# epidermal nevus and nevus sebaceous (not melanocytic nevi), urticaria pigmentosa (mastocytosis,
# not urticaria), porokeratosis actinic (a porokeratosis, not an actinic keratosis), stasis edema
# (oedema without dermatitis), neurodermatitis / lichen simplex, milia and mucous cyst.
FITZPATRICK17K = {
    "acne": "acne",
    "acne vulgaris": "acne",
    "actinic keratosis": "actinic-keratosis",
    "allergic contact dermatitis": "allergic-contact-dermatitis",
    "basal cell carcinoma": "basal-cell-carcinoma",
    "basal cell carcinoma morpheiform": "basal-cell-carcinoma",
    "solid cystic basal cell carcinoma": "basal-cell-carcinoma",
    "congenital nevus": "melanocytic-nevus",
    "halo nevus": "melanocytic-nevus",
    "nevocytic nevus": "melanocytic-nevus",
    "dyshidrotic eczema": "eczema",
    "eczema": "eczema",
    "folliculitis": "folliculitis",
    "hidradenitis": "hidradenitis",
    "keloid": "scar-condition",
    "lentigo maligna": "melanoma",  # melanoma in situ, not a lentigo
    "malignant melanoma": "melanoma",
    "melanoma": "melanoma",
    "superficial spreading melanoma ssm": "melanoma",
    "pilar cyst": "cyst",
    "psoriasis": "psoriasis",
    "pustular psoriasis": "psoriasis",
    "seborrheic dermatitis": "seborrheic-dermatitis",
    "seborrheic keratosis": "sk-isk",
    "squamous cell carcinoma": "scc-sccis",
    "urticaria": "urticaria",
    "vitiligo": "vitiligo",
}

# DDI `disease`. Left unmapped among others: epidermal-nevus, hyperpigmentation (not necessarily
# post-inflammatory), mycosis-fungoides, kaposi-sarcoma, dermatofibroma, lipoma.
DDI = {
    "acne-cystic": "acne",
    "acrochordon": "skin-tag",
    "actinic-keratosis": "actinic-keratosis",
    "atypical-spindle-cell-nevus-of-reed": "melanocytic-nevus",
    "basal-cell-carcinoma": "basal-cell-carcinoma",
    "basal-cell-carcinoma-nodular": "basal-cell-carcinoma",
    "basal-cell-carcinoma-superficial": "basal-cell-carcinoma",
    "blue-nevus": "melanocytic-nevus",
    "dysplastic-nevus": "melanocytic-nevus",
    "eczema-spongiotic-dermatitis": "eczema",
    "epidermal-cyst": "cyst",
    "folliculitis": "folliculitis",
    "keloid": "scar-condition",
    "melanocytic-nevi": "melanocytic-nevus",
    "melanoma": "melanoma",
    "melanoma-acral-lentiginous": "melanoma",
    "melanoma-in-situ": "melanoma",
    "nodular-melanoma-(nm)": "melanoma",
    "pigmented-spindle-cell-nevus-of-reed": "melanocytic-nevus",
    "scar": "scar-condition",
    "seborrheic-keratosis": "sk-isk",
    "seborrheic-keratosis-irritated": "sk-isk",
    "solar-lentigo": "lentigo",
    "squamous-cell-carcinoma": "scc-sccis",
    "squamous-cell-carcinoma-in-situ": "scc-sccis",
    "squamous-cell-carcinoma-keratoacanthoma": "scc-sccis",
    "tinea-pedis": "tinea",
    "verruca-vulgaris": "verruca-vulgaris",
    "wart": "verruca-vulgaris",
}

# SCIN `weighted_skin_condition_label` keys come from the same teledermatology label space as our
# taxonomy (Liu et al. 2019), so each of our 26 condition names maps to itself.
SCIN = {seed.name.lower(): seed.slug for seed in SEED_CONDITIONS if seed.slug != "other"}

DEFAULT_LABEL_MAPPINGS: dict[str, dict[str, str]] = {
    "ddi": DDI,
    "fitzpatrick17k": FITZPATRICK17K,
    "ham10000": HAM10000,
    "pad-ufes-20": PAD_UFES_20,
    "scin": SCIN,
}
