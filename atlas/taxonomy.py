"""The seed taxonomy: the 26 conditions + "other" of the teledermatology study the patent
text cites (Liu et al. 2019). Loaded by a data migration; editable in the admin afterwards.

Synonyms are what search understands (search/interpret.py). A lay phrase may be listed under
several conditions when it can mean any of them ("white patches": vitiligo and tinea versicolor;
"mole that changed": melanoma as well as a benign mole); search then ranks all of them first.
"""

from __future__ import annotations

from typing import NamedTuple


class ConditionSeed(NamedTuple):
    slug: str
    name: str
    category: str
    synonyms: tuple[str, ...]


SEED_CONDITIONS: tuple[ConditionSeed, ...] = (
    ConditionSeed("acne", "Acne", "inflammatory", ("acne vulgaris", "pimples", "spots", "zits", "blackheads")),
    ConditionSeed("actinic-keratosis", "Actinic keratosis", "malignant", ("solar keratosis", "sun damage spot", "AK")),
    ConditionSeed("allergic-contact-dermatitis", "Allergic contact dermatitis", "inflammatory", ("contact allergy", "contact rash", "allergic rash")),
    ConditionSeed("alopecia-areata", "Alopecia areata", "other", ("patchy hair loss", "spot baldness")),
    ConditionSeed("androgenetic-alopecia", "Androgenetic alopecia", "other", ("male pattern baldness", "female pattern hair loss", "pattern baldness")),
    ConditionSeed("basal-cell-carcinoma", "Basal cell carcinoma", "malignant", ("BCC", "rodent ulcer", "basal cell cancer")),
    ConditionSeed("cyst", "Cyst", "benign_neoplasm", ("epidermoid cyst", "sebaceous cyst", "epidermal inclusion cyst")),
    ConditionSeed("eczema", "Eczema", "inflammatory", ("atopic dermatitis", "dermatitis", "itchy dry skin")),
    ConditionSeed("folliculitis", "Folliculitis", "infectious", ("infected hair follicles", "razor bumps", "hot tub rash")),
    ConditionSeed("hidradenitis", "Hidradenitis", "inflammatory", ("hidradenitis suppurativa", "acne inversa", "HS")),
    ConditionSeed("lentigo", "Lentigo", "pigmentary", ("lentigines", "liver spot", "age spot", "sun spot")),
    ConditionSeed("melanocytic-nevus", "Melanocytic nevus", "benign_neoplasm", ("mole", "nevus", "naevus", "beauty mark", "changing mole", "mole that changed", "mole that has changed")),
    ConditionSeed("melanoma", "Melanoma", "malignant", ("malignant melanoma", "skin cancer mole", "changing mole", "mole that changed", "mole that has changed")),
    ConditionSeed("post-inflammatory-hyperpigmentation", "Post-inflammatory hyperpigmentation", "pigmentary", ("PIH", "dark marks", "dark spots after acne")),
    ConditionSeed("psoriasis", "Psoriasis", "inflammatory", ("plaque psoriasis", "scaly plaques")),
    ConditionSeed("scc-sccis", "SCC/SCCIS", "malignant", ("squamous cell carcinoma", "squamous cell carcinoma in situ", "Bowen's disease", "SCC")),
    ConditionSeed("sk-isk", "SK/ISK", "benign_neoplasm", ("seborrheic keratosis", "seborrhoeic keratosis", "irritated seborrheic keratosis", "barnacle", "wisdom wart")),
    ConditionSeed("scar-condition", "Scar condition", "other", ("scar", "keloid", "hypertrophic scar")),
    ConditionSeed("seborrheic-dermatitis", "Seborrheic dermatitis", "inflammatory", ("seborrhoeic dermatitis", "dandruff", "cradle cap")),
    ConditionSeed("skin-tag", "Skin tag", "benign_neoplasm", ("acrochordon", "soft fibroma")),
    ConditionSeed("stasis-dermatitis", "Stasis dermatitis", "inflammatory", ("venous eczema", "gravitational eczema", "venous stasis")),
    ConditionSeed("tinea", "Tinea", "infectious", ("ringworm", "athlete's foot", "jock itch", "dermatophytosis", "fungal infection")),
    ConditionSeed("tinea-versicolor", "Tinea versicolor", "infectious", ("pityriasis versicolor", "sun fungus", "white patches", "pale patches", "light patches")),
    ConditionSeed("urticaria", "Urticaria", "inflammatory", ("hives", "nettle rash", "welts")),
    ConditionSeed("verruca-vulgaris", "Verruca vulgaris", "infectious", ("common wart", "wart", "warts")),
    ConditionSeed("vitiligo", "Vitiligo", "pigmentary", ("white patches", "leucoderma", "depigmentation", "pale patches", "light patches")),
    ConditionSeed("other", "Other", "other", ()),
)
